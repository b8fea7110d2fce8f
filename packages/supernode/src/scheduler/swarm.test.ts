import { describe, expect, it } from 'vitest'
import * as C from './constants.js'
import { DIGEST_MISMATCH_CODE, Swarm, type PiecePlan, type SwarmInit } from './swarm.js'

const SEED = { peerId: 'Seed', addrs: ['/ip4/10.0.0.1/tcp/8003'] }
const T = 'sha256:task'

/** A swarm on a fake clock, with helpers that speak in events. */
function setup (init: SwarmInit = {}) {
  let now = 1_000_000
  const changed: string[] = []
  const swarm = new Swarm(init, { now: () => now, seed: () => SEED, onTaskChanged: t => changed.push(t) })
  const h = {
    swarm,
    changed,
    advance: (ms: number) => { now += ms },
    announce: (...ids: string[]) => { for (const id of ids) swarm.peerAnnounced({ peerId: id, addrs: [`/ip4/10.0.0.2/tcp/1/${id}`], hostname: id }) },
    /** A running task with the given pieces published. */
    task: (taskId: string, pieceCount: number, published: readonly number[] = Array.from({ length: pieceCount }, (_, i) => i)) => {
      swarm.taskStarted({ taskId, pieceCount })
      for (const index of published) swarm.pieceDigestPublished({ taskId, index })
    },
    hold: (taskId: string, peerId: string, ...indices: number[]) => { expect(swarm.piecesHeld({ taskId, peerId, indices })).toBe(true) },
    /** Requests as `requester` and returns piece index → source ids, plus the order of indices. */
    ask: (taskId: string, requester?: string) => view(swarm.piecesRequested({ taskId, requester }))
  }
  return h
}

function view (plans: PiecePlan[]) {
  const sources = new Map(plans.map(p => [p.index, p.sources.map(s => s.peerId)]))
  return { order: plans.map(p => p.index), sources, of: (i: number) => sources.get(i) ?? [], first: (i: number) => sources.get(i)?.[0], plans }
}

describe('Swarm: rarest piece first', () => {
  const cases = [
    { name: 'fewest holders first', holders: { 0: ['A', 'B'], 1: ['A'], 2: [] }, published: [0, 1, 2], want: [2, 1, 0] },
    { name: 'pieces the requester holds come last, by index', holders: { 0: ['R'], 1: ['A', 'B'], 2: ['A'], 3: ['R', 'A'] }, published: [0, 1, 2, 3], want: [2, 1, 0, 3] },
    { name: 'unpublished pieces are not offered', holders: { 0: ['A'], 1: [], 2: [] }, published: [0, 2], want: [2, 0] }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const h = setup()
      h.announce('A', 'B', 'C', 'R')
      h.task(T, 4, c.published)
      for (const [index, ids] of Object.entries(c.holders)) for (const id of ids) h.hold(T, id, Number(index))
      expect(h.ask(T, 'R').order).toEqual(c.want)
    })
  }

  it('quarantined holders do not count towards rarity', () => {
    const h = setup()
    h.announce('A', 'B', 'R', 'X')
    h.task(T, 2)
    h.hold(T, 'A', 0)
    h.hold(T, 'B', 1)
    h.hold(T, 'X', 0)
    // With X counted, piece 1 (one holder) would come before piece 0 (two). Anonymous: ties by index.
    h.swarm.pieceTransferFailed({ taskId: T, requester: 'B', index: 1, source: 'X', code: DIGEST_MISMATCH_CODE })
    expect(h.ask(T).order).toEqual([0, 1])
  })

  it('breaks ties per requester inside its window, by index outside it and for anonymous callers', () => {
    const h = setup()
    h.announce('R1', 'R2')
    const pieces = C.ASSIGNMENT_WINDOW + 4
    h.task(T, pieces)
    const window = Array.from({ length: C.ASSIGNMENT_WINDOW }, (_, i) => i)
    const rest = Array.from({ length: pieces - C.ASSIGNMENT_WINDOW }, (_, i) => C.ASSIGNMENT_WINDOW + i)
    const o1 = h.ask(T, 'R1').order
    const o2 = h.ask(T, 'R2').order
    // Every piece is equally rare (only the seed has them): each requester gets its own shuffle of its window.
    expect(o1.slice(0, window.length).sort((a, b) => a - b)).toEqual(window)
    expect(o2.slice(0, window.length).sort((a, b) => a - b)).toEqual(window)
    expect(o1.slice(0, window.length)).not.toEqual(o2.slice(0, window.length))
    expect(o1.slice(0, window.length)).not.toEqual(window)
    expect(o1.slice(window.length)).toEqual(rest)
    expect(h.ask(T, 'R1').order).toEqual(o1)
    expect(h.ask(T).order).toEqual([...window, ...rest])
  })
})

describe('Swarm: least-loaded holder first', () => {
  it('spreads many requests evenly over 3 holders', () => {
    const h = setup()
    h.announce('A', 'B', 'C')
    h.task(T, 1)
    for (const id of ['A', 'B', 'C']) h.hold(T, id, 0)
    const counts: Record<string, number> = {}
    for (let round = 0; round < 10; round++) {
      // 9 concurrent requesters, then each reports success: 3 per holder at a time, and turns are taken.
      const requesters = Array.from({ length: 9 }, (_, i) => `R${round}x${i}`)
      h.announce(...requesters)
      const firsts = requesters.map(r => h.ask(T, r).first(0)!)
      for (const f of firsts) counts[f] = (counts[f] ?? 0) + 1
      expect(['A', 'B', 'C'].map(id => h.swarm.inFlight(id))).toEqual([3, 3, 3])
      requesters.forEach((r, i) => { h.swarm.pieceTransferSucceeded({ taskId: T, requester: r, index: 0, source: firsts[i]!, bytes: 1 }) })
      h.advance(1000)
    }
    expect(counts).toEqual({ A: 30, B: 30, C: 30 })
  })

  const cases = [
    { name: 'fewest in-flight uploads first', inFlight: { A: 2, B: 1, C: 0 }, bytes: {}, want: 'C' },
    { name: 'equal in flight: lowest recent upload rate first', inFlight: {}, bytes: { A: 50_000_000, B: 10_000_000 }, want: 'C' },
    { name: 'rate beats taking turns', inFlight: {}, bytes: { B: 10_000_000, C: 20_000_000 }, want: 'A', recentlyAssigned: ['A'] }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const h = setup()
      h.announce('A', 'B', 'C', 'R')
      h.task(T, 1)
      for (const id of ['A', 'B', 'C']) h.hold(T, id, 0)
      let n = 0
      // Load is set up through the same events production sees: assignments from other requesters' polls.
      for (const [id, k] of Object.entries(c.inFlight)) {
        for (let i = 0; i < k; i++) {
          const r = `L${n++}`
          h.announce(r)
          // Make `id` the only candidate this requester can be given, by asking on a private task.
          const t = `sha256:${id}${i}`
          h.task(t, 1)
          h.hold(t, id, 0)
          expect(h.ask(t, r).first(0)).toBe(id)
        }
      }
      for (const [id, bytes] of Object.entries(c.bytes)) h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'X', index: 0, source: id, bytes })
      for (const id of c.recentlyAssigned ?? []) {
        // A was assigned most recently (so plain turn-taking would skip it) but uploads least.
        const t = `sha256:recent-${id}`
        h.task(t, 1)
        h.hold(t, id, 0)
        h.announce('Q')
        h.ask(t, 'Q')
        h.swarm.pieceTransferSucceeded({ taskId: t, requester: 'Q', index: 0, source: id })
      }
      expect(h.ask(T, 'R').first(0)).toBe(c.want)
    })
  }

  it('one reply spreads its pieces over the holders', () => {
    const h = setup()
    h.announce('A', 'B', 'R')
    h.task(T, 4)
    for (const id of ['A', 'B']) h.hold(T, id, 0, 1, 2, 3)
    const v = h.ask(T, 'R')
    expect(v.order.map(i => v.first(i))).toEqual(['A', 'B', 'A', 'B'])
  })
})

describe('Swarm: per-peer upload caps', () => {
  it('makes the 5th concurrent requester wait for the saturated holder, not take a second seed copy', () => {
    const h = setup()
    h.announce('A', 'R1', 'R2', 'R3', 'R4', 'R5')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    expect(['R1', 'R2', 'R3', 'R4'].map(r => h.ask(T, r).first(0))).toEqual(['A', 'A', 'A', 'A'])
    expect(h.swarm.inFlight('A')).toBe(C.MAX_UPLOADS_PER_PEER)
    expect(h.ask(T, 'R5').of(0)).toEqual([])
    // A slot frees: R5 is sent to A.
    h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'R1', index: 0, source: 'A', bytes: 4 })
    expect(h.ask(T, 'R5').of(0)).toEqual(['A', 'Seed'])
    expect(h.swarm.inFlight('Seed')).toBe(0)
  })

  it('never counts a requester\'s own fetches against a holder: a lone peer gets its whole window from one holder', () => {
    const h = setup()
    h.announce('A', 'R1')
    h.task(T, 12)
    for (let i = 0; i < 12; i++) h.hold(T, 'A', i)
    const first = h.ask(T, 'R1')
    // The whole 8-piece window is offered from A although only 4 uploads fit A's cap (its 4 active
    // pieces are assigned, the rest are offered from A without an assignment)…
    for (let i = 0; i < 8; i++) expect(first.of(i)[0]).toBe('A')
    expect(h.swarm.inFlight('A')).toBe(C.ACTIVE_PIECES)
    // …and a re-poll while all 8 are in flight still lists A, not "no source yet".
    const again = h.ask(T, 'R1')
    for (let i = 0; i < 12; i++) expect(again.of(i)[0]).toBe('A')
  })

  it('anonymous callers still see the seed first when every holder is saturated', () => {
    const h = setup()
    h.announce('A', 'R1', 'R2', 'R3', 'R4')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (const r of ['R1', 'R2', 'R3', 'R4']) h.ask(T, r)
    expect(h.ask(T).of(0)).toEqual(['Seed', 'A'])
  })

  it('sends the 5th concurrent upload to a holder that ranks worse but is not saturated', () => {
    const h = setup()
    h.announce('A', 'B', ...Array.from({ length: 9 }, (_, i) => `R${i + 1}`))
    h.task(T, 1)
    h.hold(T, 'A', 0)
    h.hold(T, 'B', 0)
    // One recent failure ranks B after A on every request until A is saturated.
    h.swarm.pieceTransferFailed({ taskId: T, requester: 'X', index: 0, source: 'B', code: 'DF_ERR_PEER_UNREACHABLE' })
    const firsts = Array.from({ length: 8 }, (_, i) => h.ask(T, `R${i + 1}`).first(0))
    expect(firsts).toEqual(['A', 'A', 'A', 'A', 'B', 'B', 'B', 'B'])
    // Both saturated: no source yet (a slot frees soon); the seed only after the wait limit.
    expect(h.ask(T, 'R9').of(0)).toEqual([])
    h.advance(C.SOURCE_WAIT_LIMIT_MS)
    h.announce('A', 'B', 'R9')
    expect(h.ask(T, 'R9').of(0)).toEqual(['Seed', 'A', 'B'])
  })

  it('lists failing holders before a saturated seed', () => {
    const h = setup({ maxUploadsSeed: 1 })
    h.announce('A', 'R1')
    h.task(T, 2)
    h.hold(T, 'A', 0, 1)
    for (let i = 0; i < C.FAILURES_BEFORE_DEMOTION; i++) h.swarm.pieceTransferFailed({ taskId: T, requester: 'X', index: 0, source: 'A', code: 'DF_ERR_PEER_UNREACHABLE' })
    const v = h.ask(T, 'R1')
    expect(v.of(v.order[0]!)).toEqual(['Seed', 'A'])
    expect(v.of(v.order[1]!)).toEqual(['A', 'Seed'])
  })
})

describe('Swarm: the seed is the last resort', () => {
  const cases = [
    { name: 'no holder: only the seed', holders: [], failing: [], saturate: [], want: ['Seed'] },
    { name: 'an unsaturated holder: seed last', holders: ['A'], failing: [], saturate: [], want: ['A', 'Seed'] },
    { name: 'all holders saturated: no source yet (a slot frees soon)', holders: ['A', 'B'], failing: [], saturate: ['A', 'B'], want: [] },
    { name: 'one holder saturated: the other first, seed last', holders: ['A', 'B'], failing: [], saturate: ['A'], want: ['B', 'A', 'Seed'] },
    { name: 'all holders failing: seed first', holders: ['A'], failing: ['A'], saturate: [], want: ['Seed', 'A'] },
    { name: 'a failing holder ranks after a working one', holders: ['A', 'B'], failing: ['A'], saturate: [], want: ['B', 'A', 'Seed'] }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const h = setup({ maxUploadsPerPeer: 1 })
      h.announce('A', 'B', 'R')
      h.task(T, 1)
      for (const id of c.holders) h.hold(T, id, 0)
      for (const id of c.saturate) {
        const t = `sha256:sat-${id}`
        h.task(t, 1)
        h.hold(t, id, 0)
        h.announce(`S${id}`)
        expect(h.ask(t, `S${id}`).first(0)).toBe(id)
      }
      for (const id of c.failing) {
        for (let i = 0; i < C.FAILURES_BEFORE_DEMOTION; i++) h.swarm.pieceTransferFailed({ taskId: T, requester: 'X', index: 0, source: id, code: 'DF_ERR_PEER_UNREACHABLE' })
      }
      expect(h.ask(T, 'R').of(0)).toEqual(c.want)
    })
  }

  it('is never assigned while a peer can serve', () => {
    const h = setup()
    h.announce('A', 'B')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    h.hold(T, 'B', 0)
    for (let i = 0; i < 8; i++) {
      h.announce(`R${i}`)
      expect(h.ask(T, `R${i}`).of(0).at(-1)).toBe('Seed')
    }
    expect(h.swarm.inFlight('Seed')).toBe(0)
    h.announce('R8')
    expect(h.ask(T, 'R8').of(0)).toEqual([])
    h.advance(C.SOURCE_WAIT_LIMIT_MS)
    h.announce('A', 'B', 'R8')
    expect(h.ask(T, 'R8').first(0)).toBe('Seed')
    expect(h.swarm.inFlight('Seed')).toBe(1)
  })

  it('demotion wakes pollers once, when the threshold is crossed', () => {
    const h = setup()
    h.announce('A')
    h.task(T, 1)
    h.changed.length = 0
    for (let i = 0; i < C.FAILURES_BEFORE_DEMOTION + 2; i++) h.swarm.pieceTransferFailed({ taskId: T, requester: 'X', index: 0, source: 'A', code: 'DF_ERR_PEER_UNREACHABLE' })
    expect(h.changed).toEqual([T])
  })

  it('failures age out of the window', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (let i = 0; i < C.FAILURES_BEFORE_DEMOTION; i++) h.swarm.pieceTransferFailed({ taskId: T, requester: 'X', index: 0, source: 'A' })
    expect(h.ask(T, 'R').first(0)).toBe('Seed')
    h.advance(C.RATE_WINDOW_MS)
    h.announce('A', 'R2')
    expect(h.ask(T, 'R2').first(0)).toBe('A')
  })
})

describe('Swarm: quarantine', () => {
  // Quarantines last minutes; a day-long TTL keeps peers alive without heartbeats in these tests.
  const LONG_TTL = { peerTtlMs: 24 * 3600_000 }
  function twoTasks () {
    const h = setup(LONG_TTL)
    h.announce('A', 'B', 'R', 'R2')
    for (const t of [T, 'sha256:other']) {
      h.task(t, 2)
      h.hold(t, 'A', 0, 1)
      h.hold(t, 'B', 1)
    }
    return h
  }

  it('excludes the source of a digest mismatch from that task only', () => {
    const h = twoTasks()
    expect(h.ask(T, 'R').first(0)).toBe('A')
    h.changed.length = 0
    const q = h.swarm.pieceResultsReported({ taskId: T, requester: 'R', results: [{ index: 0, sourcePeerId: 'A', ok: false, code: DIGEST_MISMATCH_CODE }] })
    expect(q).toEqual([{ peerId: 'A', scope: 'task' }])
    expect(h.changed).toEqual([T])
    expect(h.swarm.inFlight('A')).toBe(0)
    const v = h.ask(T, 'R2')
    expect(v.of(0)).toEqual(['Seed'])
    expect(v.of(1)).toEqual(['B', 'Seed'])
    expect(h.ask('sha256:other', 'R2').of(0)).toEqual(['A', 'Seed'])
    expect(h.swarm.peerState('A')).toBe('active')
  })

  it('lifts the task quarantine after its period, without the bad piece', () => {
    const h = twoTasks()
    h.swarm.pieceTransferFailed({ taskId: T, requester: 'R', index: 0, source: 'A', code: DIGEST_MISMATCH_CODE })
    h.advance(C.TASK_QUARANTINE_MS - 1)
    expect(h.ask(T, 'R2').of(1)).not.toContain('A')
    h.advance(1)
    const v = h.ask(T, 'R2')
    expect(v.of(1)).toContain('A')
    expect(v.of(0)).toEqual(['Seed'])
  })

  it('other failures do not quarantine', () => {
    const h = twoTasks()
    h.swarm.pieceTransferFailed({ taskId: T, requester: 'R', index: 0, source: 'A', code: 'DF_ERR_PIECE_UNAVAILABLE' })
    expect(h.ask(T, 'R2').of(0)).toEqual(['A', 'Seed'])
  })

  it('quarantines globally after mismatches in distinct tasks, until the period ends', () => {
    const h = setup(LONG_TTL)
    h.announce('A', 'R')
    const tasks = ['sha256:t1', 'sha256:t2', 'sha256:t3', 'sha256:t4']
    for (const t of tasks) {
      h.task(t, 2)
      h.hold(t, 'A', 0, 1)
    }
    // Repeated mismatches in one task are one strike.
    for (let i = 0; i < 5; i++) {
      h.swarm.pieceTransferFailed({ taskId: 'sha256:t1', requester: 'R', index: i % 2, source: 'A', code: DIGEST_MISMATCH_CODE })
      h.advance(1000)
    }
    expect(h.swarm.peerState('A')).toBe('active')
    expect(h.ask('sha256:t4', 'R').first(0)).toBe('A')
    expect(h.swarm.pieceTransferFailed({ taskId: 'sha256:t2', requester: 'R', index: 0, source: 'A', code: DIGEST_MISMATCH_CODE })).toEqual({ peerId: 'A', scope: 'task' })
    h.changed.length = 0
    expect(h.swarm.pieceTransferFailed({ taskId: 'sha256:t3', requester: 'R', index: 0, source: 'A', code: DIGEST_MISMATCH_CODE })).toEqual({ peerId: 'A', scope: 'global' })
    expect(h.changed.sort()).toEqual([...tasks].sort())
    expect(h.swarm.peerState('A')).toBe('quarantined')
    expect(h.ask('sha256:t4', 'R').of(0)).toEqual(['Seed'])
    // Leaving and re-announcing does not wash the quarantine away.
    h.swarm.peerLeft('A')
    h.announce('A')
    h.hold('sha256:t4', 'A', 0)
    expect(h.ask('sha256:t4', 'R').of(0)).toEqual(['Seed'])
    h.advance(C.GLOBAL_QUARANTINE_MS)
    expect(h.swarm.peerState('A')).toBe('active')
    expect(h.ask('sha256:t4', 'R').of(0)).toEqual(['A', 'Seed'])
  })

  it('forgets strikes outside the window', () => {
    const h = setup()
    h.announce('A', 'R')
    for (const [i, t] of ['sha256:t1', 'sha256:t2', 'sha256:t3'].entries()) {
      h.task(t, 1)
      h.hold(t, 'A', 0)
      h.swarm.pieceTransferFailed({ taskId: t, requester: 'R', index: 0, source: 'A', code: DIGEST_MISMATCH_CODE })
      if (i === 0) h.advance(C.STRIKE_WINDOW_MS + 1)
      h.announce('A', 'R')
    }
    expect(h.swarm.peerState('A')).toBe('active')
  })

  it('never quarantines the seed', () => {
    const h = setup()
    h.announce('R')
    h.task(T, 1)
    expect(h.swarm.pieceTransferFailed({ taskId: T, requester: 'R', index: 0, source: 'Seed', code: DIGEST_MISMATCH_CODE })).toBeUndefined()
    expect(h.ask(T, 'R').of(0)).toEqual(['Seed'])
  })
})

describe('Swarm: in flight', () => {
  function saturatedA () {
    const h = setup()
    h.announce('A', 'R1', 'R2', 'R3', 'R4', 'R5', 'R6')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (const r of ['R1', 'R2', 'R3', 'R4']) expect(h.ask(T, r).first(0)).toBe('A')
    expect(h.ask(T, 'R5').of(0)).toEqual([])
    return h
  }

  it('expires an assignment nobody reported on', () => {
    const h = saturatedA()
    h.advance(C.ASSIGNMENT_TTL_MS - 1)
    h.announce('A', 'R6')
    expect(h.ask(T, 'R6').of(0)).toEqual([])
    h.advance(1)
    expect(h.ask(T, 'R6').first(0)).toBe('A')
  })

  const releases = [
    { name: 'a success result', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'R1', index: 0, source: 'A', bytes: 4 }) } },
    { name: 'a failure result', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.pieceTransferFailed({ taskId: T, requester: 'R1', index: 0, source: 'A', code: 'DF_ERR_PROTOCOL' }) } },
    // R1 now holds the piece with no upload in flight, so it leads; the point is A's slot is free again.
    { name: 'the requester reporting it holds the piece', want: 'R1', release: (h: ReturnType<typeof setup>) => { h.hold(T, 'R1', 0) } },
    { name: 'the requester leaving', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.peerLeft('R1') } }
  ]
  for (const c of releases) {
    it(`releases the slot on ${c.name}`, () => {
      const h = saturatedA()
      c.release(h)
      expect(h.swarm.inFlight('A')).toBe(3)
      expect(h.ask(T, 'R6').first(0)).toBe(c.want)
      expect(h.ask(T, 'R6').of(0)).toContain('A')
    })
  }

  it('charges only the requester\'s window of lacking pieces, and keeps assignments across re-polls', () => {
    const h = setup({ maxUploadsPerPeer: 100 })
    h.announce('A', 'B', 'R')
    h.task(T, 20)
    h.hold(T, 'A', ...Array.from({ length: 20 }, (_, i) => i))
    h.hold(T, 'B', ...Array.from({ length: 20 }, (_, i) => i))
    h.hold(T, 'R', 0, 1)
    const first = h.ask(T, 'R')
    // Only its active pieces (the first ACTIVE_PIECES of its window in reply order) are charged.
    const active = first.order.filter(i => i >= 2).slice(0, C.ACTIVE_PIECES)
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
    const again = h.ask(T, 'R')
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
    for (const i of active) expect(again.first(i)).toBe(first.first(i))
    // Holding two of them frees two slots, which go to the next pieces of the window.
    h.hold(T, 'R', active[0] as number, active[1] as number)
    h.ask(T, 'R')
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
  })

  it('with `from`, assigns only pieces the requester can fetch: lacking ones in [from, from + window)', () => {
    // The piece numbers below are worked out for a window of 8 (twice the active pieces).
    const h = setup({ assignmentWindow: 8 })
    h.announce('R')
    h.task(T, 30)
    // R reads from piece 10 and already fetched 10–13 ahead; its lowest lacking pieces (0–7) are not
    // where it fetches (a range read), and neither is anything from 18 on.
    h.hold(T, 'R', 10, 11, 12, 13)
    h.swarm.piecesRequested({ taskId: T, requester: 'R', from: 10 })
    expect(h.swarm.inFlight('Seed')).toBe(C.ACTIVE_PIECES)
    // Those four are 14–17: a second requester fetching there finds each one claimed…
    h.announce('R2')
    const r2 = view(h.swarm.piecesRequested({ taskId: T, requester: 'R2', from: 14 }))
    for (const i of [14, 15, 16, 17]) expect(r2.of(i)).toEqual([])
    // …while pieces 0–7, which R's lowest lacking would have been, are unclaimed: R2 gets all its slots there.
    const r3 = view(h.swarm.piecesRequested({ taskId: T, requester: 'R2', from: 0 }))
    expect([0, 1, 2, 3, 4, 5, 6, 7].filter(i => r3.first(i) === 'Seed')).toHaveLength(C.ACTIVE_PIECES)
  })

  it('gives seed claims and source waits only to the pieces a requester fetches now, not to the rest of its window', () => {
    // A window of twice the active pieces: R1 fetches one half, R2 the other.
    const window = 2 * C.ACTIVE_PIECES
    const h = setup({ assignmentWindow: window })
    h.announce('R1', 'R2')
    h.task(T, window)
    const seeded = (v: ReturnType<typeof h.ask>): number[] => v.order.filter(i => v.first(i) === 'Seed')
    // R1 claims the seed for its active pieces only; the rest of its window has no source yet.
    const r1 = seeded(h.ask(T, 'R1'))
    expect(r1).toHaveLength(C.ACTIVE_PIECES)
    // R2 gets the seed for the pieces R1 does not fetch: no piece goes out twice.
    const r2 = seeded(h.ask(T, 'R2'))
    expect(r2).toHaveLength(window - C.ACTIVE_PIECES)
    expect(new Set([...r1, ...r2]).size).toBe(window)
    // Long after the wait limit, while R1 still fetches its own pieces, the pieces R2 fetches are not
    // handed to R1 as well: R1 was busy, not starved of a source.
    h.advance(C.MAX_STRETCHED_WAIT_MS)
    const later = h.ask(T, 'R1')
    for (const i of r2) expect(later.of(i)).toEqual([])
    for (const i of r1) expect(later.first(i)).toBe('Seed')
  })

  it('moves a seed assignment to a peer that came to hold the piece', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    expect(h.ask(T, 'R').first(0)).toBe('Seed')
    h.hold(T, 'A', 0)
    expect(h.ask(T, 'R').first(0)).toBe('A')
    expect(h.swarm.inFlight('Seed')).toBe(0)
    expect(h.swarm.inFlight('A')).toBe(1)
  })

  it('anonymous requests record nothing', () => {
    const h = setup()
    h.announce('A')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (let i = 0; i < 10; i++) expect(h.ask(T).first(0)).toBe('A')
    expect(h.swarm.inFlight('A')).toBe(0)
  })

  it('does not wake pollers for assignments', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    h.changed.length = 0
    h.ask(T, 'R')
    h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'R', index: 0, source: 'A', bytes: 4 })
    expect(h.changed).toEqual([])
  })
})

describe('Swarm: peers', () => {
  it('never offers the requester itself', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 2)
    h.hold(T, 'R', 0, 1)
    h.hold(T, 'A', 1)
    const v = h.ask(T, 'R')
    expect(v.of(0)).toEqual(['Seed'])
    expect(v.of(1)).toEqual(['A', 'Seed'])
    expect(h.ask(T).of(0)).toEqual(['R', 'Seed'])
  })

  const departures = [
    { name: 'leaving', depart: (h: ReturnType<typeof setup>) => { expect(h.swarm.peerLeft('A')).toBe(true) } },
    {
      name: 'expiring',
      depart: (h: ReturnType<typeof setup>) => {
        for (let t = 0; t <= C.PEER_TTL_MS; t += C.HEARTBEAT_INTERVAL_MS) {
          h.advance(C.HEARTBEAT_INTERVAL_MS)
          expect([h.swarm.peerHeartbeat('B'), h.swarm.peerHeartbeat('R')]).toEqual([true, true])
        }
        expect(h.swarm.expireSilentPeers()).toEqual(['A'])
      }
    }
  ]
  for (const c of departures) {
    it(`drops holdings and in-flight work on ${c.name}`, () => {
      const h = setup()
      h.announce('A', 'B', 'R')
      h.task(T, 2)
      h.hold(T, 'A', 0, 1)
      h.hold(T, 'B', 1)
      expect(h.ask(T, 'R').first(0)).toBe('A')
      expect(h.swarm.inFlight('A')).toBe(1)
      h.changed.length = 0
      c.depart(h)
      expect(h.changed).toEqual([T])
      expect(h.swarm.inFlight('A')).toBe(0)
      expect(h.swarm.holders(T, 0)).toEqual([])
      const v = h.ask(T, 'R')
      expect(v.of(0)).toEqual(['Seed'])
      expect(v.of(1)).toEqual(['B', 'Seed'])
      expect(h.swarm.peerState('A')).toBe('left')
      expect(h.swarm.peerCount()).toBe(2)
    })
  }

  it('treats a silent peer as gone before the sweep, and makes it announce again', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (let i = 0; i < 5; i++) { h.advance(C.HEARTBEAT_INTERVAL_MS); expect(h.swarm.peerHeartbeat('A')).toBe(true) }
    h.advance(C.PEER_TTL_MS + 1)
    h.announce('R')
    expect(h.swarm.peerState('A')).toBe('expired')
    expect(h.ask(T, 'R').of(0)).toEqual(['Seed'])
    expect(h.swarm.peerHeartbeat('A')).toBe(false)
    expect(h.swarm.peerState('A')).toBe('left')
    h.announce('A')
    expect(h.swarm.holders(T, 0)).toEqual([])
  })

  it('keeps holdings over the re-announce of a live peer', () => {
    const h = setup()
    h.announce('A')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    h.announce('A')
    expect(h.swarm.holders(T, 0)).toEqual(['A'])
  })

  it('refuses holdings from a peer that is not announced', () => {
    const h = setup()
    h.task(T, 1)
    expect(h.swarm.piecesHeld({ taskId: T, peerId: 'Z', indices: [0] })).toBe(false)
  })
})

describe('Swarm: tasks', () => {
  it('follows the task lifecycle', () => {
    const h = setup()
    h.announce('A', 'R')
    h.swarm.taskLoaded({ taskId: 'sha256:done', pieceCount: 3, state: 'succeeded' })
    h.swarm.taskLoaded({ taskId: 'sha256:bad', pieceCount: 3, state: 'failed' })
    expect(h.ask('sha256:done').order).toEqual([0, 1, 2])
    expect(h.ask('sha256:bad').order).toEqual([])
    h.task(T, 3, [0])
    expect(h.ask(T).order).toEqual([0])
    expect(h.swarm.tasksByState()).toEqual({ running: 1, succeeded: 1, failed: 1 })
    h.hold(T, 'A', 0)
    expect(h.ask(T, 'R').first(0)).toBe('A')
    h.swarm.taskFailed({ taskId: T })
    expect(h.swarm.taskState(T)).toBe('failed')
    expect(h.ask(T, 'R').order).toEqual([])
    expect(h.swarm.holders(T, 0)).toEqual([])
    expect(h.swarm.inFlight('A')).toBe(0)
    h.task(T, 3, [0])
    h.swarm.taskSucceeded({ taskId: T })
    expect(h.ask(T).order).toEqual([0, 1, 2])
    h.swarm.taskForgotten({ taskId: T })
    expect(h.swarm.taskState(T)).toBeUndefined()
    expect(h.ask(T).order).toEqual([])
  })

  it('keeps holdings when a task is forgotten and fetched again', () => {
    const h = setup()
    h.announce('A')
    h.task(T, 2)
    h.hold(T, 'A', 0)
    h.swarm.taskForgotten({ taskId: T })
    h.task(T, 2, [0])
    expect(h.ask(T).of(0)).toEqual(['A', 'Seed'])
  })
})

describe('Swarm: the seed serves a fresh piece to one requester at a time (super-seeding)', () => {
  /** R1 is fetching piece 0 (only the seed has it) from the seed. */
  function claimed (init: SwarmInit = {}) {
    const h = setup(init)
    h.announce('R1', 'R2', 'R3')
    h.task(T, 1)
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    return h
  }

  it(`sends at most ${C.SEED_FANOUT_PER_PIECE} requester to the seed per piece; the others get no source yet`, () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.ask(T, 'R3').of(0)).toEqual([])
    expect(h.swarm.inFlight('Seed')).toBe(1)
    // The claimant itself keeps being told the seed while it fetches.
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
  })

  it('lists the claimant first as soon as it reports the piece, and wakes pollers', () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.hold(T, 'R1', 0)
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['R1', 'Seed'])
    expect(h.ask(T, 'R3').of(0)).toEqual(['R1', 'Seed'])
    expect(h.swarm.inFlight('Seed')).toBe(0)
  })

  it('lets other requesters fetch other pieces of their window meanwhile', () => {
    const h = setup()
    h.announce('R1', 'R2')
    h.task(T, 2)
    // R1 claims piece 0 only (piece 1 is not published yet); R2 then gets piece 1 from the seed.
    h.swarm.taskStarted({ taskId: T, pieceCount: 2 })
    h.swarm.pieceDigestPublished({ taskId: T, index: 0 })
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    h.swarm.pieceDigestPublished({ taskId: T, index: 1 })
    const v = h.ask(T, 'R2')
    expect(v.of(0)).toEqual([])
    expect(v.of(1)).toEqual(['Seed'])
  })

  it('offers the seed again when the claimant reports a failure, and wakes pollers', () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.swarm.pieceResultsReported({ taskId: T, requester: 'R1', results: [{ index: 0, sourcePeerId: 'Seed', ok: false, code: 'DF_ERR_PEER_UNREACHABLE' }] })
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
  })

  it('keeps the claim through a success until the held-piece report arrives, within a grace period', () => {
    const h = claimed()
    h.swarm.pieceResultsReported({ taskId: T, requester: 'R1', results: [{ index: 0, sourcePeerId: 'Seed', ok: true, bytes: 4 }] })
    expect(h.swarm.inFlight('Seed')).toBe(0)
    // Without the grace the piece would have neither claim nor holder now, and R2 would get a second copy.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.advance(C.SEED_ARRIVAL_GRACE_MS - 1)
    expect(h.ask(T, 'R3').of(0)).toEqual([])
    h.advance(1)
    expect(h.ask(T, 'R3').of(0)).toEqual(['Seed'])
  })

  it(`expires a claim ${C.SEED_CLAIM_TTL_MS} ms after the claimant last polled`, () => {
    const h = claimed({ sourceWaitLimitMs: 60_000 })
    h.advance(C.SEED_CLAIM_TTL_MS - 1)
    // A poll by the live claimant renews its claim.
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    h.advance(C.SEED_CLAIM_TTL_MS - 1)
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    // The claimant went silent (a crash): after the TTL, the seed is offered to the next requester.
    h.advance(1)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
  })

  it(`offers the seed anyway to a requester that waited ${C.SOURCE_WAIT_LIMIT_MS} ms for a source, even at the seed's cap`, () => {
    const h = claimed({ seedClaimTtlMs: 60_000, maxUploadsSeed: 1 })
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.msUntilWaitLimit(T, 'R1')).toBeUndefined()
    h.advance(C.SOURCE_WAIT_LIMIT_MS - 1)
    // Re-polling does not restart the wait.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(1)
    h.advance(1)
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(0)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBeUndefined()
    expect(h.swarm.inFlight('Seed')).toBe(2)
  })

  it('stretches the source wait and the claim TTL to cover slow seed transfers, and shrinks them back', () => {
    const h = claimed()
    const seedResult = (requester: string, durationMs: number) =>
      h.swarm.pieceResultsReported({ taskId: T, requester, results: [{ index: 0, sourcePeerId: 'Seed', ok: true, bytes: 4, durationMs }] })
    // Fast seed transfers leave the configured limits alone.
    seedResult('R3', 500)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.seedClaimTtlMs()).toBe(C.SEED_CLAIM_TTL_MS)
    // A loaded seed: 5 s per transfer. Waiters must not give up on the first copy after 3 s.
    for (let i = 0; i < 30; i++) seedResult('R3', 5_000)
    const stretched = h.swarm.sourceWaitLimitMs()
    expect(stretched).toBeGreaterThan(9_000)
    expect(stretched).toBeLessThanOrEqual(C.SLOW_SEED_TRANSFERS * 5_000)
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(stretched)
    h.advance(C.SOURCE_WAIT_LIMIT_MS)
    // R1's claim (renewed by its poll above) outlives the 3 s TTL and R2 is still waiting for R1's copy.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.inFlight('Seed')).toBe(1)
    h.advance(stretched - C.SOURCE_WAIT_LIMIT_MS)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    // Absurd reports are bounded, and fast transfers bring the limits back down.
    for (let i = 0; i < 30; i++) seedResult('R3', 10 * 60_000)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.MAX_STRETCHED_WAIT_MS)
    for (let i = 0; i < 60; i++) seedResult('R3', 100)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.seedClaimTtlMs()).toBe(C.SEED_CLAIM_TTL_MS)
  })

  it('forgets a departed claimant\'s claims and waits, and wakes pollers', () => {
    const h = claimed({ sourceWaitLimitMs: 60_000 })
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.swarm.peerLeft('R1')
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    h.swarm.peerLeft('R3')
    expect(h.swarm.msUntilWaitLimit(T, 'R3')).toBeUndefined()
  })

  it('spreads a herd of fresh pieces: each piece goes to one requester, and then peer to peer', () => {
    const h = setup()
    const herd = ['R1', 'R2', 'R3', 'R4', 'R5', 'R6']
    h.announce(...herd)
    h.swarm.taskStarted({ taskId: T, pieceCount: 6 })
    // The seed publishes one piece at a time and every requester polls after each (as the long-poll
    // does), in an order that varies as racing long-polls do. The first to poll claims the new piece.
    for (let i = 0; i < 6; i++) {
      h.swarm.pieceDigestPublished({ taskId: T, index: i })
      for (let k = 0; k < herd.length; k++) h.ask(T, herd[(i + k) % herd.length]!)
    }
    // One seed upload per piece (not one per requester and piece), spread over the herd.
    expect(h.swarm.inFlight('Seed')).toBe(6)
    const fromSeed = herd.map(r => h.ask(T, r)).map(v => v.order.filter(i => v.first(i) === 'Seed').length)
    expect(fromSeed.reduce((a, b) => a + b, 0)).toBe(6)
    expect(fromSeed.filter(n => n > 0).length).toBeGreaterThan(1)
    // R1 reports what it got: the others are sent to R1 for those pieces.
    const got = herd.map(r => h.ask(T, r)).flatMap((v, k) => v.order.filter(i => v.first(i) === 'Seed').map(i => [herd[k]!, i] as const))
    const [holder, piece] = got[0]!
    h.hold(T, holder, piece)
    const other = herd.find(r => r !== holder)!
    expect(h.ask(T, other).first(piece)).toBe(holder)
  })
})
