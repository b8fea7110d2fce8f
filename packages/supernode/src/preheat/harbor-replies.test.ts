import { describe, expect, it } from 'vitest'
import { dragonflyJobReply, dragonflyState, legacyCreateReply, legacyStatus, legacyStatusReply } from './harbor-replies.js'
import type { JobState, PreheatJob } from './job.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const SEED = { hostname: 'supernode-0', ip: '10.0.0.9' }
const T0 = Date.UTC(2026, 7, 21, 6, 0, 0)
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

function job (over: Partial<PreheatJob> = {}): PreheatJob {
  return {
    id: 12,
    groupId: 'group_9523f30a-877d-41f7-a25f-0854228341f6',
    driver: 'dragonfly',
    url: 'https://harbor.example.com/v2/library/nginx/manifests/1.25',
    scope: 'single_seed_peer',
    platforms: ['linux/amd64'],
    concurrency: 4,
    timeoutMs: 3_600_000,
    requestCredentials: true,
    state: 'pending',
    createdAt: T0,
    updatedAt: T0,
    resumes: 0,
    ...over
  }
}
const blobs = (states: Array<'succeeded' | 'failed' | 'running'>): PreheatJob['blobs'] => states.map((state, i) => ({
  digest: i === 0 ? A : B,
  url: `https://harbor.example.com/v2/library/nginx/blobs/${i === 0 ? A : B}`,
  size: 10,
  state,
  ...(state === 'failed' ? { error: { code: 'DF_ERR_TASK_FAILED', message: 'digest mismatch' } } : {})
}))

describe('state mappings', () => {
  const table: Array<[JobState, string, string]> = [
    ['pending', 'PENDING', 'WAITING'],
    ['running', 'PENDING', 'RUNNING'],
    ['succeeded', 'SUCCESS', 'SUCCESS'],
    ['failed', 'FAILURE', 'FAILED']
  ]
  for (const [state, current, legacy] of table) {
    it(`${state} → ${current} (current driver), ${legacy} (legacy driver)`, () => {
      expect(dragonflyState(state)).toBe(current)
      expect(legacyStatus(state)).toBe(legacy)
    })
  }
})

describe('current Dragonfly driver replies', () => {
  it('a new job: integer id, RFC 3339 times, PENDING, result null, no headers echoed', () => {
    const r = dragonflyJobReply(job(), SEED)
    expect(r).toMatchObject({ id: 12, state: 'PENDING', result: null, type: 'preheat', task_id: 'group_9523f30a-877d-41f7-a25f-0854228341f6' })
    expect(Number.isInteger(r.id)).toBe(true)
    expect(r.created_at).toMatch(RFC3339)
    expect(r.updated_at).toMatch(RFC3339)
    expect(JSON.stringify(r)).not.toMatch(/headers|Authorization|Bearer/)
    expect((r.args as Record<string, unknown>).timeout).toBe(3_600_000_000_000)
  })

  it('SUCCESS lists every blob of the seed, then every peer, in Harbor\'s result shape', () => {
    const r = dragonflyJobReply(job({
      state: 'succeeded',
      scope: 'all_peers',
      finishedAt: T0 + 5000,
      updatedAt: T0 + 5000,
      blobs: blobs(['succeeded', 'succeeded']),
      peers: [{ peerId: '12D3KooWPeer', hostname: 'node-a', ip: '10.0.0.5', state: 'succeeded' }]
    }), SEED) as any
    expect(r.state).toBe('SUCCESS')
    expect(r.result.state).toBe('SUCCESS')
    const js = r.result.job_states[0]
    expect(js).toMatchObject({ task_name: 'preheat', state: 'SUCCESS', error: '', ttl: 0 })
    expect(js.results).toHaveLength(1)
    expect(js.results[0].scheduler_cluster_id).toBe(1)
    expect(js.results[0].success_tasks).toEqual([
      { url: `https://harbor.example.com/v2/library/nginx/blobs/${A}`, hostname: 'supernode-0', ip: '10.0.0.9' },
      { url: `https://harbor.example.com/v2/library/nginx/blobs/${B}`, hostname: 'supernode-0', ip: '10.0.0.9' },
      { url: `https://harbor.example.com/v2/library/nginx/blobs/${A}`, hostname: 'node-a', ip: '10.0.0.5', peer_id: '12D3KooWPeer' },
      { url: `https://harbor.example.com/v2/library/nginx/blobs/${B}`, hostname: 'node-a', ip: '10.0.0.5', peer_id: '12D3KooWPeer' }
    ])
    expect(js.results[0].failure_tasks).toEqual([])
  })

  it('FAILURE carries "CODE: message" in job_states[].error and a failure row per unfinished blob', () => {
    const r = dragonflyJobReply(job({
      state: 'failed',
      error: { code: 'DF_ERR_TASK_FAILED', message: `blob ${B}: digest mismatch` },
      blobs: blobs(['running', 'failed'])
    }), SEED) as any
    expect(r.state).toBe('FAILURE')
    const js = r.result.job_states[0]
    expect(js.error).toBe(`DF_ERR_TASK_FAILED: blob ${B}: digest mismatch`)
    expect(js.results[0].failure_tasks.map((t: any) => t.description)).toEqual([
      'not fetched: the job ended (DF_ERR_TASK_FAILED)',
      'DF_ERR_TASK_FAILED: digest mismatch'
    ])
  })

  it('peer failures become per-blob failure rows with the peer\'s own reason', () => {
    const r = dragonflyJobReply(job({
      state: 'failed',
      scope: 'all_peers',
      error: { code: 'DF_ERR_PREHEAT_PEER_FAILED', message: '2 of 2 peers…' },
      blobs: blobs(['succeeded', 'succeeded']),
      peers: [
        { peerId: 'P1', hostname: 'h1', ip: '1.1.1.1', state: 'failed', failedBlobs: [{ digest: B, error: { code: 'DF_ERR_PEER_UNREACHABLE', message: 'x' } }] },
        { peerId: 'P2', hostname: 'h2', ip: '2.2.2.2', state: 'failed', error: { code: 'DF_ERR_PREHEAT_PEER_FAILED', message: 'gone' } }
      ]
    }), SEED) as any
    const res = r.result.job_states[0].results[0]
    expect(res.success_tasks.map((t: any) => `${t.hostname} ${t.url.slice(-4)}`)).toEqual(['supernode-0 aaaa', 'supernode-0 bbbb', 'h1 aaaa'])
    expect(res.failure_tasks.map((t: any) => `${t.hostname} ${t.description}`)).toEqual(['h1 DF_ERR_PEER_UNREACHABLE: x', 'h2 DF_ERR_PREHEAT_PEER_FAILED: gone', 'h2 DF_ERR_PREHEAT_PEER_FAILED: gone'])
  })

  it('adds the progress block when given', () => {
    const progress = { blobs: { total: 2, done: 1 }, bytes: { total: 20, done: 10 }, peers: { total: 0, done: 0 } }
    expect(dragonflyJobReply(job(), SEED, progress).progress).toEqual(progress)
  })
})

describe('legacy Dragonfly driver replies', () => {
  it('create: the id is a JSON string', () => {
    expect(legacyCreateReply(job())).toEqual({ ID: '12' })
  })
  it('status: WAITING with empty times, then FAILED with the error', () => {
    expect(legacyStatusReply(job())).toEqual({ ID: '12', status: 'WAITING', startTime: '', finishTime: '', errorMsg: '' })
    const failed = legacyStatusReply(job({ state: 'failed', startedAt: T0 + 1, finishedAt: T0 + 2, error: { code: 'DF_ERR_UPSTREAM_REJECTED', message: 'MANIFEST_UNKNOWN' } }))
    expect(failed.status).toBe('FAILED')
    expect(failed.startTime).toMatch(RFC3339)
    expect(failed.finishTime).toMatch(RFC3339)
    expect(failed.errorMsg).toBe('DF_ERR_UPSTREAM_REJECTED: MANIFEST_UNKNOWN')
  })
})
