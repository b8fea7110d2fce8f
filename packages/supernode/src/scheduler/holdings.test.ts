import { describe, expect, it } from 'vitest'
import { HolderSet } from './holdings.js'
import { PeerEntry } from './peer-entry.js'

const entry = (slot: number): PeerEntry => new PeerEntry({ peerId: `peer-${slot}`, addrs: [], hostname: `h${slot}`, lastSeen: 0 }, slot)

describe('HolderSet', () => {
  it('keeps membership, positions and slots right across the switch from scanned slots to bits', () => {
    const peers = Array.from({ length: 200 }, (_, k) => entry(k * 37 % 211))
    const set = new HolderSet()
    const model = new Set<PeerEntry>()
    const check = (): void => {
      expect(set.size).toBe(model.size)
      for (const p of peers) expect(set.has(p)).toBe(model.has(p))
      for (let i = 0; i < set.size; i++) expect(set.slotAt(i)).toBe(set.at(i).slot)
      expect(new Set(set)).toEqual(model)
    }
    // Grow past the small-set size, shrink below it, grow again: every step agrees with a plain Set.
    for (const p of peers.slice(0, 10)) { set.add(p); model.add(p) }
    check()
    for (const p of peers.slice(0, 120)) { set.add(p); model.add(p) }
    check()
    for (const p of peers.slice(5, 115)) { expect(set.delete(p)).toBe(true); model.delete(p) }
    check()
    expect(set.delete(peers[50] as PeerEntry)).toBe(false)
    for (const p of peers.slice(100)) { set.add(p); model.add(p) }
    check()
  })

  it('keeps the cursor inside the set as holders leave', () => {
    const set = new HolderSet()
    const peers = [entry(0), entry(1), entry(2)]
    for (const p of peers) set.add(p)
    set.cursor = 2
    set.delete(peers[2] as PeerEntry)
    expect(set.cursor).toBe(0)
    set.cursor = 7
    expect(set.cursor).toBe(1)
  })
})
