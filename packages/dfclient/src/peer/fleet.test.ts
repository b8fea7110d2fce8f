import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { layoutFor, rendezvousOwner } from '@damselfly/proto'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import { SupernodeFleet } from './fleet.js'

const PEER = '12D3KooWACr8CrBX3FHhmNou7TT2Tz3CNNoKH1yNm6hmKUgAKByb'
const BLOB = `sha256:${'b'.repeat(64)}`
const SEED_A = '12D3KooWACr8CrBX3FHhmNou7TT2Tz3CNNoKH1yNm6hmKUgAKBya'
const SEED_B = '12D3KooWACr8CrBX3FHhmNou7TT2Tz3CNNoKH1yNm6hmKUgAKByc'

/** A fake supernode: announce, heartbeat, held-piece reports (recorded); knows tasks once told to. */
async function fakeSupernode (seed: string): Promise<{ url: string, reports: string[], knows: Set<string>, close: () => Promise<void> }> {
  const reports: string[] = []
  const knows = new Set<string>()
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', c => { body += String(c) })
    req.on('end', () => {
      const send = (status: number, json?: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(json === undefined ? undefined : JSON.stringify(json)) }
      if (req.url === '/api/v1/peers') return send(200, { peerId: PEER, heartbeatIntervalMs: 100, ttlMs: 1000, supernode: { peerId: seed, addrs: ['/ip4/127.0.0.1/tcp/1'] } })
      if (req.url?.endsWith('/heartbeat') === true) return send(204)
      const m = /^\/api\/v1\/tasks\/([^/]+)\/pieces$/.exec(req.url ?? '')
      if (m !== null && req.method === 'POST') {
        const digest = decodeURIComponent(m[1]!)
        if (!knows.has(digest)) return send(404, { error: { code: 'DF_ERR_TASK_UNKNOWN', message: 'no task' } })
        reports.push(`${digest.slice(0, 9)} ${(JSON.parse(body) as { pieces: number[] }).pieces.join(',')}`)
        return send(204)
      }
      send(404, { error: { code: 'DF_ERR_NOT_FOUND', message: req.url ?? '' } })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reports,
    knows,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  }
}

const waitFor = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
}

describe('SupernodeFleet', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => { for (const c of cleanups.splice(0)) await c() })

  it('announces to every supernode, reports a blob to its owner only, and re-reports it to the next owner when the owner is lost', async () => {
    const a = await fakeSupernode(SEED_A)
    const b = await fakeSupernode(SEED_B)
    cleanups.push(b.close)
    const cache = new MemoryPieceCache()
    await cache.writePiece(BLOB, layoutFor(10), 0, `sha256:${'c'.repeat(64)}`, new Uint8Array(10))
    const fleet = new SupernodeFleet({
      supernodes: [{ kind: 'url', url: a.url }, { kind: 'url', url: b.url }],
      peer: { peerId: PEER, addrs: () => ['/ip4/127.0.0.1/tcp/2'], hostname: 'h', version: 'v' }
    }, { cache, logger: pino({ level: 'silent' }) })
    cleanups.push(async () => { await fleet.stop() })
    const [owner, other] = rendezvousOwner(BLOB, [SEED_A, SEED_B], s => s) === SEED_A ? [a, b] : [b, a]
    owner.knows.add(BLOB)
    other.knows.add(BLOB)
    await fleet.start()
    expect(fleet.status().map(e => e.healthy)).toEqual([true, true])
    await waitFor(() => owner.reports.length > 0)
    expect(owner.reports).toEqual([`${BLOB.slice(0, 9)} 0`])
    expect(other.reports).toEqual([])
    // The owner dies: its next heartbeat fails, and the blob's pieces go to the runner-up.
    if (owner === a) await a.close()
    else { await b.close(); cleanups.splice(0, 1) }
    if (owner === b) cleanups.push(a.close)
    await waitFor(() => other.reports.length > 0)
    expect(other.reports).toEqual([`${BLOB.slice(0, 9)} 0`])
    expect(fleet.status().filter(e => e.healthy)).toHaveLength(1)
  })
})
