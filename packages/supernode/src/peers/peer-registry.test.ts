import { describe, expect, it } from 'vitest'
import { PeerRegistry } from './peer-registry.js'

function setup () {
  let now = 1_000
  const changed: string[] = []
  const registry = new PeerRegistry({ ttlMs: 35_000, now: () => now, onHoldingsChanged: t => changed.push(t) })
  return { registry, changed, advance: (ms: number) => { now += ms } }
}

describe('PeerRegistry', () => {
  it('keeps a peer alive while it heartbeats within the TTL', () => {
    const { registry, advance } = setup()
    registry.announce({ peerId: 'A', addrs: ['/ip4/1.2.3.4/tcp/1'], hostname: 'a' })
    for (let i = 0; i < 10; i++) {
      advance(10_000)
      expect(registry.heartbeat('A')).toBe(true)
    }
    expect(registry.sweep()).toEqual([])
    expect(registry.size).toBe(1)
  })

  it('expires a silent peer with its holdings', () => {
    const { registry, changed, advance } = setup()
    registry.announce({ peerId: 'A', addrs: ['/ip4/1.2.3.4/tcp/1'], hostname: 'a' })
    registry.announce({ peerId: 'B', addrs: ['/ip4/1.2.3.5/tcp/1'], hostname: 'b' })
    registry.addHoldings('A', 'task1', [0, 1])
    registry.addHoldings('B', 'task1', [1])
    expect(registry.holders('task1', 1).map(p => p.peerId).sort()).toEqual(['A', 'B'])
    advance(20_000)
    registry.heartbeat('B')
    advance(16_000)
    changed.length = 0
    expect(registry.sweep()).toEqual(['A'])
    expect(changed).toEqual(['task1'])
    expect(registry.holders('task1', 0)).toEqual([])
    expect(registry.holders('task1', 1).map(p => p.peerId)).toEqual(['B'])
    expect(registry.heartbeat('A')).toBe(false)
  })

  it('treats an expired but unswept peer as gone', () => {
    const { registry, advance } = setup()
    registry.announce({ peerId: 'A', addrs: ['/ip4/1.2.3.4/tcp/1'], hostname: 'a' })
    registry.addHoldings('A', 't', [0])
    advance(35_001)
    expect(registry.get('A')).toBeUndefined()
    expect(registry.holders('t', 0)).toEqual([])
    expect(registry.heartbeat('A')).toBe(false)
  })

  it('re-announce keeps holdings; leave drops them', () => {
    const { registry } = setup()
    registry.announce({ peerId: 'A', addrs: ['/ip4/1.2.3.4/tcp/1'], hostname: 'a' })
    registry.addHoldings('A', 't', [3])
    registry.announce({ peerId: 'A', addrs: ['/ip4/1.2.3.4/tcp/2'], hostname: 'a' })
    expect(registry.holders('t', 3)[0]?.addrs).toEqual(['/ip4/1.2.3.4/tcp/2'])
    expect(registry.remove('A')).toBe(true)
    expect(registry.holders('t', 3)).toEqual([])
    expect(registry.size).toBe(0)
  })
})
