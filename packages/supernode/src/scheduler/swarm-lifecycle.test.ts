import { describe, expect, it } from 'vitest'
import * as C from './constants.js'
import { DIGEST_MISMATCH_CODE } from './swarm.js'
import { setup, T } from '../test-support/swarm-fixture.js'

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
