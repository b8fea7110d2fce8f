import { describe, expect, it } from 'vitest'
import { rendezvousOrder, rendezvousOwner, rendezvousScore } from './rendezvous.js'

const nodes = ['sn-a', 'sn-b', 'sn-c', 'sn-d']
const keys = Array.from({ length: 4000 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`)
const id = (n: string): string => n

describe('rendezvous hashing', () => {
  it('is deterministic and independent of the order nodes are listed in', () => {
    expect(rendezvousScore('sn-a', 'k')).toBe(rendezvousScore('sn-a', 'k'))
    for (const k of keys.slice(0, 50)) {
      expect(rendezvousOwner(k, nodes, id)).toBe(rendezvousOwner(k, [...nodes].reverse(), id))
      expect(rendezvousOrder(k, nodes, id)[0]).toBe(rendezvousOwner(k, nodes, id))
    }
  })

  it('spreads keys evenly over the nodes', () => {
    const counts = new Map<string, number>()
    for (const k of keys) counts.set(rendezvousOwner(k, nodes, id)!, (counts.get(rendezvousOwner(k, nodes, id)!) ?? 0) + 1)
    for (const n of nodes) expect(counts.get(n)! / keys.length).toBeGreaterThan(0.2)
  })

  it('moves only the keys of a removed node, each to its runner-up', () => {
    const without = nodes.filter(n => n !== 'sn-b')
    for (const k of keys) {
      const order = rendezvousOrder(k, nodes, id)
      const owner = rendezvousOwner(k, without, id)
      if (order[0] !== 'sn-b') expect(owner).toBe(order[0])
      else expect(owner).toBe(order[1])
    }
  })

  it('has no owner without nodes', () => {
    expect(rendezvousOwner('k', [], id)).toBeUndefined()
    expect(rendezvousOrder('k', [], id)).toEqual([])
  })
})
