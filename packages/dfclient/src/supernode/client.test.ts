import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SupernodeClient } from './client.js'

const PEER = '12D3KooWACr8CrBX3FHhmNou7TT2Tz3CNNoKH1yNm6hmKUgAKByb'
const DIGEST = `sha256:${'c'.repeat(64)}`

describe('SupernodeClient', () => {
  let server: Server
  let url: string
  const seen: Array<{ req: IncomingMessage, body: string }> = []

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', c => { body += String(c) })
      req.on('end', () => {
        seen.push({ req, body })
        const send = (status: number, json?: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(json === undefined ? undefined : JSON.stringify(json)) }
        if (req.url === '/api/v1/peers') send(200, { peerId: PEER, heartbeatIntervalMs: 1000, ttlMs: 5000, supernode: { peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'] } })
        else if (req.url === `/api/v1/peers/${PEER}/heartbeat`) send(404, { error: { code: 'DF_ERR_PEER_UNKNOWN', message: 'who?' } })
        else if (req.url === '/api/v1/tasks') send(502, { error: { code: 'DF_ERR_UPSTREAM_REJECTED', message: 'upstream said 401', details: { status: 401 } } })
        else if (req.url?.startsWith(`/api/v1/tasks/${encodeURIComponent(DIGEST)}/pieces?`) === true) send(200, { task: { taskId: DIGEST, digest: DIGEST, size: 1, pieceSize: 4194304, pieceCount: 1, state: 'running' }, version: 3, pieces: [] })
        else send(500)
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })

  it('skips an unreachable supernode, sends the token, and validates replies', async () => {
    const client = new SupernodeClient({ urls: ['http://127.0.0.1:9', url], token: 's3cret' })
    const reply = await client.announce({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/2'], hostname: 'h' })
    expect(reply.heartbeatIntervalMs).toBe(1000)
    expect(client.url).toBe(url)
    expect(seen.at(-1)?.req.headers.authorization).toBe('Bearer s3cret')
    expect(JSON.parse(seen.at(-1)?.body ?? '')).toMatchObject({ peerId: PEER })
  })

  it('maps API errors to DfErrors with code and details', async () => {
    const client = new SupernodeClient({ urls: [url] })
    expect(await client.heartbeat(PEER)).toBe(false)
    await expect(client.registerTask({ digest: DIGEST, url: 'http://r/v2/a/blobs/x' })).rejects.toMatchObject({ code: 'DF_ERR_UPSTREAM_REJECTED', details: { status: 401 }, httpStatus: 502 })
  })

  it('long-polls pieces with query parameters', async () => {
    const client = new SupernodeClient({ urls: [url] })
    const res = await client.pollPieces(DIGEST, { peerId: PEER, since: 2, waitMs: 100 })
    expect(res.version).toBe(3)
    expect(seen.at(-1)?.req.url).toContain('since=2&waitMs=100')
    // Where the reader is: only its window is asked about.
    await client.pollPieces(DIGEST, { peerId: PEER, since: 3, waitMs: 100, from: 5, window: 64 })
    expect(seen.at(-1)?.req.url).toContain('from=5&window=64&since=3')
  })

  it('throws DF_ERR_SUPERNODE_UNAVAILABLE when nothing answers', async () => {
    const client = new SupernodeClient({ urls: ['http://127.0.0.1:9'] })
    await expect(client.leave(PEER)).rejects.toMatchObject({ code: 'DF_ERR_SUPERNODE_UNAVAILABLE' })
  })
})
