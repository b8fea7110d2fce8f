import { describe, expect, it } from 'vitest'
import type { NewJob, PreheatJob } from './job.js'
import {
  afterRestart, blobFailed, blobStarted, blobSucceeded, blobsResolved, createJob, failJob, isTerminal, peerGone,
  peerReported, peersTargeted, seedComplete, settle, startJob
} from './job-state.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const base: NewJob = { driver: 'dragonfly', url: 'http://r/v2/x/manifests/v1', scope: 'single_seed_peer', platforms: ['linux/amd64'], concurrency: 4, timeoutMs: 60_000, requestCredentials: true }
const blobs = [{ digest: A, url: `http://r/v2/x/blobs/${A}`, size: 10 }, { digest: B, url: `http://r/v2/x/blobs/${B}`, size: 20 }]
const peers = [{ peerId: 'P1', hostname: 'h1', ip: '10.0.0.1' }, { peerId: 'P2', hostname: 'h2', ip: '10.0.0.2' }]

/** A running job with both blobs resolved. */
function resolved (init: Partial<NewJob> = {}): PreheatJob {
  return blobsResolved(startJob(createJob(1, 'group_x', { ...base, ...init }, 1), 2), blobs, 3)
}
function seeded (init: Partial<NewJob> = {}): PreheatJob {
  return blobSucceeded(blobSucceeded(resolved(init), A, 4), B, 5)
}

describe('preheat job state machine', () => {
  it('pending → running → succeeded once every blob is seeded', () => {
    const created = createJob(7, 'group_y', base, 100)
    expect(created).toMatchObject({ id: 7, state: 'pending', createdAt: 100, resumes: 0 })
    const started = startJob(created, 110)
    expect(started).toMatchObject({ state: 'running', startedAt: 110 })
    expect(startJob(started, 120)).toBe(started)
    let job = blobsResolved(started, [...blobs, blobs[0]!], 120)
    expect(job.blobs?.map(b => b.state)).toEqual(['pending', 'pending'])
    job = blobStarted(job, A, 121)
    expect(job.blobs?.[0]?.state).toBe('running')
    job = blobSucceeded(job, A, 122)
    expect(settle(job, 123)).toBe(job)
    job = blobSucceeded(job, B, 124)
    expect(seedComplete(job)).toBe(true)
    const done = settle(job, 125)
    expect(done).toMatchObject({ state: 'succeeded', finishedAt: 125 })
    expect(isTerminal(done)).toBe(true)
  })

  const failures: Array<{ name: string, apply: (j: PreheatJob) => PreheatJob, code: string, message: RegExp }> = [
    { name: 'a blob fails', apply: j => blobFailed(j, B, { code: 'DF_ERR_UPSTREAM_REJECTED', message: 'answered 401' }, 9), code: 'DF_ERR_UPSTREAM_REJECTED', message: /blob sha256:b+: answered 401/ },
    { name: 'the job is failed (timeout)', apply: j => failJob(j, { code: 'DF_ERR_PREHEAT_TIMEOUT', message: 'too slow' }, 9), code: 'DF_ERR_PREHEAT_TIMEOUT', message: /too slow/ },
    { name: 'restart without credentials', apply: j => afterRestart(j, { ok: false, reason: 'headers gone' }, 9), code: 'DF_ERR_PREHEAT_INTERRUPTED', message: /headers gone/ }
  ]
  for (const f of failures) {
    it(`fails when ${f.name}, and then never changes`, () => {
      const failed = f.apply(resolved())
      expect(failed.state).toBe('failed')
      expect(failed.error?.code).toBe(f.code)
      expect(failed.error?.message).toMatch(f.message)
      expect(failed.finishedAt).toBe(9)
      for (const late of [
        (j: PreheatJob) => blobSucceeded(j, A, 10),
        (j: PreheatJob) => settle(j, 10),
        (j: PreheatJob) => failJob(j, { code: 'DF_ERR_INTERNAL', message: 'x' }, 10),
        (j: PreheatJob) => afterRestart(j, { ok: true }, 10),
        (j: PreheatJob) => peersTargeted(j, peers, 10)
      ]) expect(late(failed)).toBe(failed)
    })
  }

  it('a restart with credentials resumes: fetches in flight go back to pending, finished blobs stay', () => {
    const job = blobStarted(blobSucceeded(resolved(), A, 4), B, 5)
    const resumed = afterRestart(job, { ok: true }, 50)
    expect(resumed.state).toBe('running')
    expect(resumed.resumes).toBe(1)
    expect(resumed.blobs?.map(b => b.state)).toEqual(['succeeded', 'pending'])
    const pending = afterRestart(createJob(2, 'g', base, 1), { ok: true }, 2)
    expect(pending.state).toBe('pending')
  })

  it('all_peers waits for every targeted peer, and succeeds when all fetched everything', () => {
    let job = seeded({ scope: 'all_peers' })
    expect(settle(job, 6)).toBe(job)
    job = peersTargeted(job, peers, 6)
    expect(job.peers?.map(p => p.state)).toEqual(['pending', 'pending'])
    expect(peersTargeted(job, [], 7)).toBe(job)
    job = peerReported(job, 'P1', [{ digest: A, ok: true }, { digest: B, ok: true }], 7)
    expect(settle(job, 8)).toBe(job)
    job = peerReported(job, 'P2', [{ digest: A, ok: true }, { digest: B, ok: true }], 8)
    expect(settle(job, 9).state).toBe('succeeded')
  })

  it('all_peers fails naming each peer that did not fetch the image', () => {
    let job = peersTargeted(seeded({ scope: 'all_peers' }), peers, 6)
    job = peerReported(job, 'P1', [{ digest: A, ok: true }, { digest: B, ok: false, code: 'DF_ERR_PEER_UNREACHABLE', message: 'no route' }], 7)
    expect(job.peers?.[0]).toMatchObject({ state: 'failed', failedBlobs: [{ digest: B, error: { code: 'DF_ERR_PEER_UNREACHABLE', message: 'no route' } }] })
    job = peerGone(job, 'P2', 'stopped polling', 8)
    // A report after the peer was given up on changes nothing.
    expect(peerReported(job, 'P2', [{ digest: A, ok: true }, { digest: B, ok: true }], 9)).toBe(job)
    const done = settle(job, 10)
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('DF_ERR_PREHEAT_PEER_FAILED')
    expect(done.error?.message).toMatch(/^2 of 2 peers did not fetch the image: h1 \(10\.0\.0\.1\): no route; h2 \(10\.0\.0\.2\): stopped polling$/)
  })

  it('a peer report that omits a blob counts it as failed', () => {
    const job = peerReported(peersTargeted(seeded({ scope: 'all_peers' }), peers.slice(0, 1), 6), 'P1', [{ digest: A, ok: true }], 7)
    expect(job.peers?.[0]?.failedBlobs?.map(f => f.digest)).toEqual([B])
  })

  it('all_peers with no following peer succeeds with the seed alone', () => {
    expect(settle(peersTargeted(seeded({ scope: 'all_peers' }), [], 6), 7).state).toBe('succeeded')
  })
})
