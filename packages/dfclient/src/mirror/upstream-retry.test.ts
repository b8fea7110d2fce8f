import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resumableBody } from './upstream-retry.js'
import { UpstreamClient } from './upstream.js'

const blob = randomBytes(3 * 1024 * 1024)

/** A registry stand-in whose behaviour per path is scripted: answers are consumed one per request. */
function start (script: Map<string, Array<(req: IncomingMessage, res: ServerResponse) => void>>, seen: Array<{ path: string, range: string | undefined }>): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', range: req.headers.range })
    const step = script.get(req.url ?? '')?.shift() ?? serve
    step(req, res)
  })
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => { resolve(server) }))
}

/** Serves `blob`, honouring a `Range: bytes=a-b`. */
function serve (req: IncomingMessage, res: ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '')
  if (m === null) { res.writeHead(200, { 'content-length': blob.length }).end(blob); return }
  const a = Number(m[1]); const b = m[2] === undefined ? blob.length - 1 : Number(m[2])
  res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${blob.length}` }).end(blob.subarray(a, b + 1))
}
const status = (code: number) => (_req: IncomingMessage, res: ServerResponse): void => { res.writeHead(code, { 'content-type': 'text/html' }).end('<h1>busy</h1>') }
const resetAfter = (n: number) => (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-length': blob.length })
  res.write(blob.subarray(0, n), () => { res.socket?.destroy() })
}

describe('upstream retries and resumes', () => {
  const script = new Map<string, Array<(req: IncomingMessage, res: ServerResponse) => void>>()
  const seen: Array<{ path: string, range: string | undefined }> = []
  let server: Server
  let base: string
  const client = new UpstreamClient({ retryDelayMs: 10, timeoutMs: 2000 })

  beforeAll(async () => {
    server = await start(script, seen)
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await client.close()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('retries 503 and 502 with backoff, then returns the answer', async () => {
    script.set('/a', [status(503), status(502)])
    const res = await client.request('GET', `${base}/a`, {}, new AbortController().signal)
    expect(res.statusCode).toBe(200)
    expect(Buffer.from(await res.body.arrayBuffer()).equals(blob)).toBe(true)
    expect(seen.filter(s => s.path === '/a')).toHaveLength(3)
  })

  it('gives up after 3 attempts and returns the last answer; a 404 is never retried', async () => {
    script.set('/b', [status(503), status(503), status(503), status(503)])
    expect((await client.request('GET', `${base}/b`, {}, new AbortController().signal)).statusCode).toBe(503)
    expect(seen.filter(s => s.path === '/b')).toHaveLength(3)
    script.set('/c', [status(404)])
    expect((await client.request('HEAD', `${base}/c`, {}, new AbortController().signal)).statusCode).toBe(404)
    expect(seen.filter(s => s.path === '/c')).toHaveLength(1)
  })

  it('resumes a body that breaks off with a Range request from the next byte', async () => {
    script.set('/d', [resetAfter(1024 * 1024)])
    const signal = new AbortController().signal
    const first = await client.request('GET', `${base}/d`, {}, signal)
    const parts: Buffer[] = []
    for await (const chunk of resumableBody(first, { signal, delayMs: 10, reopen: async (range) => await client.request('GET', `${base}/d`, { range }, signal) })) parts.push(Buffer.from(chunk))
    expect(Buffer.concat(parts).equals(blob)).toBe(true)
    const resumed = seen.filter(s => s.path === '/d' && s.range !== undefined)
    expect(resumed).toHaveLength(1)
    expect(resumed[0]!.range).toMatch(/^bytes=\d+-3145727$/)
  })

  it('ends with an error, never short, when every resume breaks too', async () => {
    script.set('/e', [resetAfter(1000), resetAfter(1000), resetAfter(1000), resetAfter(1000), resetAfter(1000)])
    const signal = new AbortController().signal
    const first = await client.request('GET', `${base}/e`, {}, signal)
    let got = 0
    const read = (async () => { for await (const chunk of resumableBody(first, { signal, delayMs: 5, reopen: async (range) => await client.request('GET', `${base}/e`, { range }, signal) })) got += chunk.byteLength })()
    await expect(read).rejects.toBeDefined()
    expect(got).toBeLessThan(blob.length)
  })

  it('refuses loopback, private and link-local targets unless configured', async () => {
    const guarded = new UpstreamClient({ registries: [base] })
    try {
      const ok = await guarded.request('GET', `${base}/f`, {}, new AbortController().signal)
      await ok.body.dump()
      expect(ok.statusCode).toBe(200)
      for (const url of ['http://169.254.169.254/latest/meta-data', 'http://127.0.0.1:1/v2/', 'http://[::1]:5000/v2/', 'http://10.0.0.1/v2/']) {
        await expect(guarded.request('GET', url, {}, new AbortController().signal)).rejects.toMatchObject({ code: 'DF_ERR_REGISTRY_NOT_ALLOWED' })
      }
    } finally {
      await guarded.close()
    }
  })
})
