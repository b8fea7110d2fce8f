import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { PeerAllowList } from './allow-list.js'

const A = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const B = '12D3KooWPeerBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'

describe('PeerAllowList', () => {
  const servers: Server[] = []
  afterEach(async () => { for (const s of servers.splice(0)) { s.closeAllConnections(); await new Promise(resolve => s.close(resolve)) } })

  async function supernode (peers: () => string[], seen: Array<{ auth: string | undefined, url: string }>): Promise<string> {
    const s = createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, url: req.url ?? '' })
      const list = peers()
      const version = list.join(',').length.toString(16) + list.length.toString(16)
      const since = new URL(req.url ?? '', 'http://x').searchParams.get('since')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(since === version ? { version } : { version, peers: list }))
    })
    servers.push(s)
    await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
  }

  it('allows listed peers, refreshes (with the token) when an unknown one dials, keeps a former member for the grace period only', async () => {
    let peers = [A]
    const seen: Array<{ auth: string | undefined, url: string }> = []
    let t = 1_000_000
    const list = new PeerAllowList({ urls: [await supernode(() => peers, seen)], token: 'tok', logger: pino({ level: 'silent' }), graceMs: 60_000, now: () => t })
    expect(list.has(A)).toBe(false) // nothing known before the first list
    await list.refresh()
    expect(list.has(A)).toBe(true)
    expect(seen[0]).toMatchObject({ auth: 'Bearer tok' })
    // B announces after our last refresh and dials at once: refreshed on the miss.
    peers = [A, B]
    t += 2000
    expect(await list.allows(B)).toBe(true)
    expect(seen.at(-1)?.url).toContain('since=')
    // A leaves: still allowed within the grace, not after.
    peers = [B]
    t += 1000
    await list.refresh()
    expect(list.has(A)).toBe(true)
    t += 61_000
    await list.refresh()
    expect(list.has(A)).toBe(false)
    expect(list.has(B)).toBe(true)
    expect(await list.allows('12D3KooWStranger')).toBe(false)
  })

  it('merges the lists of several supernodes and survives one that is down', async () => {
    const seen: Array<{ auth: string | undefined, url: string }> = []
    const list = new PeerAllowList({ urls: [await supernode(() => [A], seen), 'http://127.0.0.1:1', await supernode(() => [B], seen)], logger: pino({ level: 'silent' }) })
    await list.refresh()
    expect(list.has(A) && list.has(B)).toBe(true)
  })
})
