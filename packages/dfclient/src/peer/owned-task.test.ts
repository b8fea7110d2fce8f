import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { dfError, rendezvousOwner, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import type { SupernodeClient } from '../supernode/client.js'
import { PieceReporter, type ReportClient } from '../supernode/piece-reporter.js'
import { SupernodeRing } from '../supernode/ring.js'
import { TaskOwners } from '../supernode/task-owners.js'
import { OwnedTask } from './owned-task.js'

const D = `sha256:${'d'.repeat(64)}`
const task: TaskInfo = { taskId: D, digest: D, size: 3 * 4194304, pieceSize: 4194304, pieceCount: 3, state: 'running' }
const reply = (version: number): PiecesResponse => ({ task, version, pieces: [] })
const unreachable = (): Error => dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'no supernode answered: connect ECONNREFUSED')

/** A fake supernode: records calls; `fail` makes its next calls throw. */
function fakeSupernode (name: string, calls: string[]) {
  const state: { fail?: () => Error, pieces?: PiecesResponse['pieces'] } = {}
  const client = {
    registerTask: async () => { calls.push(`${name} register`); if (state.fail !== undefined) throw state.fail(); return task },
    pollPieces: async (_d: string, q: { since?: number, waitMs?: number }) => {
      calls.push(`${name} poll since=${q.since} wait=${q.waitMs}`)
      if (state.fail !== undefined) throw state.fail()
      return { ...reply(100), pieces: state.pieces ?? [] }
    }
  } as unknown as SupernodeClient
  return { client, state }
}

function setup () {
  const calls: string[] = []
  const reports: string[] = []
  const ring = new SupernodeRing()
  const x = fakeSupernode('X', calls)
  const y = fakeSupernode('Y', calls)
  const ex = ring.add('http://x', x.client)
  const ey = ring.add('http://y', y.client)
  ring.markHealthy(ex, 'seed-x')
  ring.markHealthy(ey, 'seed-y')
  const owners = new TaskOwners(ring)
  const reportClient: ReportClient = {
    reportPieces: async (digest, _peer, pieces) => { reports.push(`${owners.endpointFor(digest)?.url} ${pieces.join(',')}`) },
    reportPieceResults: async () => {}
  }
  const reporter = new PieceReporter(reportClient, 'me', pino({ level: 'silent' }))
  const owned = new OwnedTask({ peerId: 'me', owners, reporter, held: () => [0, 2], logger: pino({ level: 'silent' }) })
  // Name the fakes by role: the task's owner by the hash, and its runner-up.
  const ownerIsX = rendezvousOwner(D, ['seed-x', 'seed-y'], s => s) === 'seed-x'
  return { calls, reports, ring, owners, reporter, owned, owner: ownerIsX ? { ...x, e: ex, name: 'X' } : { ...y, e: ey, name: 'Y' }, next: ownerIsX ? { ...y, e: ey, name: 'Y' } : { ...x, e: ex, name: 'X' } }
}

describe('OwnedTask: a download follows its task to the next owner', () => {
  it('registers at the owner by the hash and polls there', async () => {
    const h = setup()
    await h.owned.registerTask({ digest: D, url: 'http://reg/v2/a/blobs/' + D }, AbortSignal.timeout(1000))
    await h.owned.pollPieces(D, 7, 5000, AbortSignal.timeout(1000), { from: 0, window: 64 })
    expect(h.calls).toEqual([`${h.owner.name} register`, `${h.owner.name} poll since=7 wait=5000`])
    expect(h.owned.endpoint).toBe(h.owner.e)
  })

  it('when the owner dies mid-pull: marks it down, registers at the runner-up, re-reports held pieces there, and polls afresh', async () => {
    const h = setup()
    await h.owned.registerTask({ digest: D, url: 'http://reg/v2/a/blobs/' + D, authorization: 'Bearer t' }, AbortSignal.timeout(1000))
    h.owner.state.fail = unreachable
    const res = await h.owned.pollPieces(D, 7, 5000, AbortSignal.timeout(1000), { from: 1, window: 64 })
    expect(res.version).toBe(100)
    expect(h.calls).toEqual([`${h.owner.name} register`, `${h.owner.name} poll since=7 wait=5000`, `${h.next.name} register`, `${h.next.name} poll since=0 wait=0`])
    expect(h.owner.e.healthy).toBe(false)
    expect(h.owned.endpoint).toBe(h.next.e)
    expect(h.reports).toEqual([`${h.next.e.url} 0,2`])
    // The next poll long-polls again; the dead owner coming back does not pull the download back.
    h.owner.state.fail = undefined
    h.ring.markHealthy(h.owner.e, h.owner.name === 'X' ? 'seed-x' : 'seed-y')
    await h.owned.pollPieces(D, 100, 5000, AbortSignal.timeout(1000), { from: 1, window: 64 })
    expect(h.calls.at(-1)).toBe(`${h.next.name} poll since=100 wait=5000`)
    h.owned.release()
  })

  it('after a move, lists the pieces the new owner has not published yet with no source (the old seed is gone)', async () => {
    const h = setup()
    const digestOf = (i: number): string => `sha256:${String(i).repeat(64)}`
    const seedSource = { peerId: '12D3KooWSeed', addrs: [], seed: true }
    h.owner.state.pieces = [0, 1, 2].map(index => ({ index, digest: digestOf(index), sources: [seedSource] }))
    await h.owned.registerTask({ digest: D, url: 'u' }, AbortSignal.timeout(1000))
    expect((await h.owned.pollPieces(D, 0, 0, AbortSignal.timeout(1000), { from: 0, window: 64 })).pieces).toHaveLength(3)
    h.owner.state.fail = unreachable
    // The new owner has published piece 0 only so far.
    h.next.state.pieces = [{ index: 0, digest: digestOf(0), sources: [{ peerId: '12D3KooWNewSeed', addrs: [], seed: true }] }]
    const res = await h.owned.pollPieces(D, 5, 5000, AbortSignal.timeout(1000), { from: 0, window: 64 })
    expect(res.pieces.map(p => [p.index, p.sources.map(x => x.peerId)])).toEqual([[0, ['12D3KooWNewSeed']], [1, []], [2, []]])
    h.owned.release()
  })

  it('re-registers at the same owner when it forgot the task (it restarted)', async () => {
    const h = setup()
    await h.owned.registerTask({ digest: D, url: 'u' }, AbortSignal.timeout(1000))
    h.owner.state.fail = () => { h.owner.state.fail = undefined; return dfError('DF_ERR_TASK_UNKNOWN', 'no task') }
    await h.owned.pollPieces(D, 3, 5000, AbortSignal.timeout(1000), { from: 0, window: 64 })
    expect(h.calls.filter(c => c.endsWith('register'))).toEqual([`${h.owner.name} register`, `${h.owner.name} register`])
    expect(h.owner.e.healthy).toBe(true)
  })

  it('fails (and the pull falls back) when no other supernode is healthy', async () => {
    const h = setup()
    await h.owned.registerTask({ digest: D, url: 'u' }, AbortSignal.timeout(1000))
    h.owner.state.fail = unreachable
    h.next.state.fail = unreachable
    await expect(h.owned.pollPieces(D, 3, 5000, AbortSignal.timeout(1000), { from: 0, window: 64 })).rejects.toMatchObject({ code: 'DF_ERR_SUPERNODE_UNAVAILABLE' })
    expect(h.ring.healthy()).toEqual([])
  })
})

describe('PieceReporter', () => {
  it('retries held-piece reports a new owner does not know the task for, while asked to', async () => {
    let known = false
    const sent: number[][] = []
    const client: ReportClient = {
      reportPieces: async (_d, _p, pieces) => { if (!known) throw dfError('DF_ERR_TASK_UNKNOWN', 'no task'); sent.push(pieces) },
      reportPieceResults: async () => {}
    }
    const r = new PieceReporter(client, 'me', pino({ level: 'silent' }), { delayMs: 1 })
    r.report(D, [1, 2], 0, { awaitTaskMs: 10_000 })
    await r.flush()
    expect(sent).toEqual([])
    known = true
    await r.deliver(D)
    expect(sent).toEqual([[1, 2]])
    // Without the option a TASK_UNKNOWN answer is final.
    known = false
    r.report(D, [3], 0)
    await r.flush()
    known = true
    await r.deliver(D)
    expect(sent).toEqual([[1, 2]])
    r.stop()
  })
})
