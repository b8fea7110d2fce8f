import { describe, expect, it } from 'vitest'
import { rendezvousOwner } from '@damselfly/proto'
import type { SupernodeClient } from './client.js'
import { SupernodeRing } from './ring.js'
import { TaskOwners } from './task-owners.js'

const client = {} as SupernodeClient
const tasks = Array.from({ length: 50 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`)

function ring3 () {
  const ring = new SupernodeRing()
  const [a, b, c] = ['http://a', 'http://b', 'http://c'].map(u => ring.add(u, client))
  ring.markHealthy(a!, 'seed-a')
  ring.markHealthy(b!, 'seed-b')
  ring.markHealthy(c!, 'seed-c')
  return { ring, a: a!, b: b!, c: c! }
}

describe('SupernodeRing', () => {
  it('owns each task by rendezvous hashing over the healthy seeds\' peer ids', () => {
    const { ring } = ring3()
    for (const t of tasks) expect(ring.owner(t)?.peerId).toBe(rendezvousOwner(t, ['seed-a', 'seed-b', 'seed-c'], x => x))
    expect(new Set(tasks.map(t => ring.owner(t)?.url)).size).toBe(3)
  })

  it('moves only a failed supernode\'s tasks, each to its runner-up, and back when it recovers', () => {
    const { ring, b } = ring3()
    const before = new Map(tasks.map(t => [t, ring.owner(t)!.url]))
    const changes: number[] = []
    ring.onChange(prev => changes.push(prev.length))
    ring.markDown(b, 'connection refused')
    for (const t of tasks) {
      const now = ring.owner(t)!.url
      if (before.get(t) !== 'http://b') expect(now).toBe(before.get(t))
      else expect(now).toBe(rendezvousOwner(t, [ring.get('http://a')!, ring.get('http://c')!], e => e.peerId!)!.url)
    }
    ring.markDown(b, 'again')
    ring.markHealthy(b, 'seed-b')
    expect(changes).toEqual([3, 2])
    for (const t of tasks) expect(ring.owner(t)!.url).toBe(before.get(t))
  })

  it('counts a supernode known under two URLs once, and has no owner when none is healthy', () => {
    const ring = new SupernodeRing()
    const x = ring.add('http://10.0.0.1:8002', client)
    const y = ring.add('http://sn-0.svc:8002', client)
    ring.markHealthy(x, 'seed-x')
    ring.markHealthy(y, 'seed-x')
    expect(ring.healthy()).toHaveLength(1)
    ring.markDown(x, 'down')
    expect(ring.owner(tasks[0]!)).toBe(y)
    ring.markDown(y, 'down')
    expect(ring.owner(tasks[0]!)).toBeUndefined()
  })
})

describe('TaskOwners', () => {
  it('keeps a running download on its owner while that one is healthy, even when the ring would pick another', () => {
    const { ring, a, b } = ring3()
    const owners = new TaskOwners(ring)
    const t = tasks.find(x => ring.owner(x) === a)!
    ring.markDown(a, 'down')
    const runnerUp = ring.owner(t)!
    const release = owners.hold(t, runnerUp)
    ring.markHealthy(a, 'seed-a')
    expect(ring.owner(t)).toBe(a)
    expect(owners.endpointFor(t)).toBe(runnerUp)
    expect(owners.active(t)).toBe(true)
    release()
    expect(owners.endpointFor(t)).toBe(a)
    expect(owners.active(t)).toBe(false)
    void b
  })

  it('marks a supernode down when a call cannot reach it', async () => {
    const { ring } = ring3()
    const owners = new TaskOwners(ring)
    const t = tasks[0]!
    const e = owners.endpointFor(t)!
    const { dfError } = await import('@damselfly/proto')
    await expect(owners.call(t, async () => { throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'no supernode answered') })).rejects.toThrow()
    expect(e.healthy).toBe(false)
    expect(owners.endpointFor(t)).not.toBe(e)
    // An answer the supernode gave (an HTTP error) is not unreachability.
    const e2 = owners.endpointFor(t)!
    await expect(owners.call(t, async () => { throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'HTTP 502', { details: { status: 502 } }) })).rejects.toThrow()
    expect(e2.healthy).toBe(true)
  })
})
