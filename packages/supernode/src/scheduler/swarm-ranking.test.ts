import { describe, expect, it } from 'vitest'
import * as C from './constants.js'
import { DIGEST_MISMATCH_CODE } from './swarm.js'
import { setup, T } from '../test-support/swarm-fixture.js'

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
