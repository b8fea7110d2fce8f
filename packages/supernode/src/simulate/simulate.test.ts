import { describe, expect, it } from 'vitest'
import { EventQueue } from './event-queue.js'
import { Network } from './links.js'
import { percentile, physicalBoundMs } from './report.js'
import { simulate } from './simulation.js'
import { parseRate, parseSize } from './units.js'

const MiB = 1024 * 1024

describe('simulator building blocks', () => {
  it('runs events in time order, same-time events in scheduling order', () => {
    const q = new EventQueue()
    const seen: string[] = []
    q.at(5, () => seen.push('b'))
    q.at(1, () => { seen.push('a'); q.after(4, () => seen.push('c')) })
    q.at(5, () => seen.push('b2'))
    q.run()
    expect(seen).toEqual(['a', 'b', 'b2', 'c'])
    expect(q.now).toBe(5)
  })

  it('shares an uplink equally, and a transfer moves at the tighter of its two shares', () => {
    const q = new EventQueue()
    const net = new Network(q)
    const src = net.host('src', 10, 100) // 10 bytes/ms up
    const a = net.host('a', 100, 100)
    const b = net.host('b', 100, 2) // a slow downlink
    const done: Record<string, number> = {}
    net.start(src, a, 100, () => { done.a = q.now })
    net.start(src, b, 100, () => { done.b = q.now })
    q.run()
    // b is held to 2 B/ms by its downlink; a gets 5 B/ms (half the uplink: shares are not
    // redistributed) until b's... b finishes last, so a finishes at 100 / 5 = 20 ms.
    expect(done.a).toBeCloseTo(20)
    // b: 2 B/ms all along (its own share of the uplink is 5): 50 ms.
    expect(done.b).toBeCloseTo(50)
    expect(src.uploaded).toBe(200)
  })

  it('speeds the others up when a transfer ends', () => {
    const q = new EventQueue()
    const net = new Network(q)
    const src = net.host('src', 10, 100)
    const [a, b] = [net.host('a', 100, 100), net.host('b', 100, 100)]
    const done: number[] = []
    net.start(src, a, 50, () => done.push(q.now))
    net.start(src, b, 150, () => done.push(q.now))
    q.run()
    // Both at 5 B/ms until a ends at 10 ms (b has 100 left), then b alone at 10 B/ms: 20 ms.
    expect(done[0]).toBeCloseTo(10)
    expect(done[1]).toBeCloseTo(20)
  })

  it('computes the physical bound max(S/U, S/D, N·S/(U+ΣD))', () => {
    // 10,000 peers, 1 GiB, 1 Gbit/s peers, 10 Gbit/s upstream: S/D dominates (8.59 s).
    expect(physicalBoundMs({ peers: 10_000, blobBytes: 2 ** 30, peerRate: 125e6, upstreamRate: 1.25e9 })).toBeCloseTo(2 ** 30 / 125e3, 6)
    // A slow upstream: S/U.
    expect(physicalBoundMs({ peers: 2, blobBytes: 1e6, peerRate: 1e6, upstreamRate: 1e5 })).toBeCloseTo(10_000)
    // Uplinks as the limit: 4 peers, upstream = a peer's rate: 4S/(U+4D) = 4/5 S/D < S/D, so S/D.
    expect(physicalBoundMs({ peers: 4, blobBytes: 1e6, peerRate: 1e6, upstreamRate: 1e6 })).toBeCloseTo(1000)
    // A ramp: the last arrival plus S/D.
    expect(physicalBoundMs({ peers: 2, blobBytes: 1e6, peerRate: 1e6, upstreamRate: 1e7, lastArrivalMs: 500 })).toBeCloseTo(1500)
  })

  it('takes nearest-rank percentiles and parses sizes and rates', () => {
    expect([percentile([1, 2, 3, 4], 0.5), percentile([1, 2, 3, 4], 0.99), percentile([], 0.5)]).toEqual([2, 4, 0])
    expect([parseSize('1GiB'), parseSize('4MiB'), parseSize('100MB'), parseSize('x')]).toEqual([2 ** 30, 4 * MiB, 1e8, undefined])
    expect([parseRate('1Gbit'), parseRate('10Gbit/s'), parseRate('125MB'), parseRate('1Gbps')]).toEqual([125e6, 1.25e9, 125e6, 125e6])
  })
})

describe('simulate: small swarms whose answer is known', () => {
  it('one peer, fast upstream: the blob arrives over the peer\'s own downlink, S/D, from the seed once', () => {
    // 16 MiB in 4 pieces; the peer takes 16 MiB/s (1 s), the upstream 10× that.
    const r = simulate({ peers: 1, blobBytes: 16 * MiB, peerRate: 16 * MiB, upstreamRate: 160 * MiB })
    expect(r.completed).toBe(1)
    expect(r.boundMs).toBeCloseTo(1000)
    // Piece 0 is published after 25 ms; from then on the downlink is always busy.
    expect(r.fleetMs).toBeGreaterThan(1000)
    expect(r.fleetMs).toBeLessThan(1060)
    expect(r.upstreamCopies).toBeCloseTo(1)
    expect(r.seedCopies).toBeCloseTo(1)
  })

  it('one peer, slow upstream: the blob arrives at the upstream rate (S/U)', () => {
    // The seed's uplink is set apart from its upstream here (by default one NIC carries both).
    const r = simulate({ peers: 1, blobBytes: 16 * MiB, peerRate: 160 * MiB, upstreamRate: 16 * MiB, seedRate: 160 * MiB })
    expect(r.boundMs).toBeCloseTo(1000)
    // The last piece is published at 1 s and then takes 4 MiB at the peer's rate (25 ms).
    expect(r.fleetMs).toBeGreaterThan(1000)
    expect(r.fleetMs).toBeLessThan(1060)
  })

  it('two peers and a seed no faster than a peer: each piece leaves the seed once and the peers trade the rest', () => {
    const r = simulate({ peers: 2, blobBytes: 32 * MiB, peerRate: 16 * MiB, upstreamRate: 16 * MiB })
    expect(r.completed).toBe(2)
    // S/D = 2 s; two peers need 2 copies from 3 uplinks of 16 MiB/s: 4/3 s, so 2 s is the bound.
    expect(r.boundMs).toBeCloseTo(2000)
    expect(r.boundRatio).toBeLessThan(1.3)
    expect(r.seedCopies).toBeLessThan(1.2)
    expect(r.upstreamCopies).toBeCloseTo(1)
  })

  it('moves the task when its owner dies: every peer completes, at most one extra upstream copy', () => {
    const r = simulate({ peers: 4, blobBytes: 32 * MiB, peerRate: 16 * MiB, upstreamRate: 16 * MiB, supernodes: 2, killOwnerAtMs: 1000 })
    expect(r.completed).toBe(4)
    expect(r.newOwner).toBeDefined()
    expect(r.newOwner).not.toBe(r.owner)
    // The dead owner fetched half the blob (1 s of 2 s), the new owner all of it.
    expect(r.upstreamCopies).toBeGreaterThan(1.4)
    expect(r.upstreamCopies).toBeLessThanOrEqual(1.5 + 1e-9)
  })

  it('plans only what peers can start (startableOnly) with the same outcome as the real dfclient\'s window polls', () => {
    const run = (polls: 'startable' | 'window') => {
      const r = simulate({ peers: 60, blobBytes: 64 * MiB, peerRate: 16 * MiB, upstreamRate: 160 * MiB, polls })
      return { fleetMs: r.fleetMs, polls: r.polls, fetches: r.fetches, events: r.events, seedCopies: r.seedCopies, completed: r.completed }
    }
    const startable = run('startable')
    expect(startable.completed).toBe(60)
    expect(run('window')).toEqual(startable)
  })

  it('is deterministic', () => {
    const a = simulate({ peers: 20, blobBytes: 32 * MiB, peerRate: 16 * MiB, upstreamRate: 64 * MiB })
    const b = simulate({ peers: 20, blobBytes: 32 * MiB, peerRate: 16 * MiB, upstreamRate: 64 * MiB })
    expect(a.fleetMs).toBe(b.fleetMs)
    expect(a.polls).toBe(b.polls)
  })
})
