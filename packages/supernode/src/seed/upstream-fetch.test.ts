import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { supernodeRegistryPolicy } from './registry-access.js'
import { createUpstreamFetcher, MAX_BODY_RESUMES } from './upstream-fetch.js'

const blob = randomBytes(2 * 1024 * 1024 + 17)
type Step = (req: IncomingMessage, res: ServerResponse) => void

function serve (req: IncomingMessage, res: ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
  if (m === null) { res.writeHead(200, { 'content-length': blob.length }).end(blob); return }
  const a = Number(m[1]); const b = Number(m[2])
  res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${blob.length}` }).end(blob.subarray(a, b + 1))
}
const status = (code: number): Step => (_req, res) => { res.writeHead(code).end('busy') }
const cut = (n: number, how: 'reset' | 'stall'): Step => (req, res) => {
  const m = /^bytes=(\d+)-/.exec(req.headers.range ?? '')
  const from = m === null ? 0 : Number(m[1])
  res.writeHead(m === null ? 200 : 206, { 'content-length': blob.length - from, ...(m === null ? {} : { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` }) })
  res.write(blob.subarray(from, from + n), () => { if (how === 'reset') res.socket?.destroy() })
}

describe('seed upstream fetch: retries, resumes, policy', () => {
  const script = new Map<string, Step[]>()
  const seen: Array<{ path: string, range: string | undefined }> = []
  let server: Server
  let base: string
  const fetch = createUpstreamFetcher({ retryDelayMs: 10, timeoutMs: 500 })
  const read = async (path: string): Promise<Buffer> => {
    const up = await fetch(`${base}${path}`, { signal: new AbortController().signal })
    const parts: Buffer[] = []
    for await (const c of up.body) parts.push(Buffer.from(c))
    return Buffer.concat(parts)
  }

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', range: req.headers.range })
      ;(script.get(req.url ?? '')?.shift() ?? serve)(req, res)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('retries 503/500/429 with backoff before the body, then reads it whole', async () => {
    script.set('/v2/a/blobs/1', [status(503), status(500), status(429)])
    expect((await read('/v2/a/blobs/1')).equals(blob)).toBe(true)
    expect(seen.filter(s => s.path === '/v2/a/blobs/1')).toHaveLength(4)
  })

  it('rejects with the last status after 4 attempts', async () => {
    script.set('/v2/a/blobs/2', Array.from({ length: 5 }, () => status(503)))
    await expect(read('/v2/a/blobs/2')).rejects.toMatchObject({ code: 'DF_ERR_UPSTREAM_REJECTED', details: { status: 503 } })
    expect(seen.filter(s => s.path === '/v2/a/blobs/2')).toHaveLength(4)
  })

  it.each(['reset', 'stall'] as const)('resumes a body after a %s with Range from the next byte', async (how) => {
    const path = `/v2/a/blobs/${how}`
    script.set(path, [cut(700_000, how)])
    expect((await read(path)).equals(blob)).toBe(true)
    const ranged = seen.filter(s => s.path === path && s.range !== undefined)
    expect(ranged).toHaveLength(1)
    expect(ranged[0]!.range).toMatch(new RegExp(`^bytes=[1-9]\\d*-${blob.length - 1}$`))
  })

  it(`fails after ${MAX_BODY_RESUMES} resumes that all break, never yielding a short body as complete`, async () => {
    script.set('/v2/a/blobs/bad', Array.from({ length: 10 }, () => cut(100_000, 'reset')))
    await expect(read('/v2/a/blobs/bad')).rejects.toMatchObject({ code: expect.stringMatching(/^DF_ERR_UPSTREAM_/) })
    expect(seen.filter(s => s.path === '/v2/a/blobs/bad')).toHaveLength(1 + MAX_BODY_RESUMES)
  })

  it('fetches from configured registries only when they are loopback, private or link-local; redirects are checked too', async () => {
    const guarded = createUpstreamFetcher({ policy: supernodeRegistryPolicy({ local: base }), retryDelayMs: 10 })
    const signal = new AbortController().signal
    const ok = await guarded(`${base}/v2/a/blobs/ok`, { signal })
    for await (const _ of ok.body) { /* drain */ }
    for (const url of ['http://169.254.169.254/v2/a/blobs/x', 'http://127.0.0.1:1/v2/a/blobs/x', 'http://[::1]/v2/a/blobs/x', 'http://localhost:1/v2/a/blobs/x']) {
      await expect(guarded(url, { signal })).rejects.toMatchObject({ code: 'DF_ERR_REGISTRY_NOT_ALLOWED' })
    }
    script.set('/v2/a/blobs/redirected', [(_req, res) => { res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data' }).end() }])
    await expect(guarded(`${base}/v2/a/blobs/redirected`, { signal })).rejects.toMatchObject({ code: 'DF_ERR_REGISTRY_NOT_ALLOWED' })
  })
})
