import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiPaths, LOG_REDACT } from '@damselfly/proto'
import { startTestSupernode } from '../test-support/running-supernode.js'

const TOKEN = 'request-log-cluster-token'
const PEER = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const lines: Array<Record<string, any>> = []
let base: string
let stop: () => Promise<void>

/** The `request completed` lines for one method and path. */
const requestLines = (method: string, path: string): Array<Record<string, any>> => lines.filter(l => l.msg === 'request completed' && l.method === method && l.path === path)

async function settle (): Promise<void> {
  // The line is written on the response's 'close', just after the client has the body.
  await new Promise(resolve => setTimeout(resolve, 50))
}

describe('supernode request log: exactly one line per request', () => {
  beforeAll(async () => {
    const logger = pino({ level: 'debug', redact: { paths: [...LOG_REDACT.paths], censor: LOG_REDACT.censor } }, { write: (s: string) => { lines.push(JSON.parse(s)) } })
    const t = await startTestSupernode({ token: TOKEN }, { logger })
    base = t.sn.httpUrl
    stop = t.stop
  })
  afterAll(async () => { await stop() })

  it('a served request: method, path, status, body bytes, ms and the peer id, at info', async () => {
    const body = JSON.stringify({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'node-a' })
    const r = await fetch(`${base}${apiPaths.peers}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body })
    const text = await r.text()
    await settle()
    const got = requestLines('POST', apiPaths.peers)
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ level: 30, status: 200, bytes: Buffer.byteLength(text), peerId: PEER })
    expect(typeof got[0]!.ms).toBe('number')
  })

  it('a refused request is still one line, with the error code, at info', async () => {
    const r = await fetch(`${base}${apiPaths.peers}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong-token-value', cookie: 'session=cookie-secret' }, body: '{}' })
    await r.text()
    await fetch(`${base}/no/such/route`).then(async res => await res.text())
    await settle()
    const refused = requestLines('POST', apiPaths.peers).filter(l => l.status === 401)
    expect(refused).toHaveLength(1)
    expect(refused[0]).toMatchObject({ level: 30, code: 'DF_ERR_UNAUTHORIZED' })
    expect(requestLines('GET', '/no/such/route')).toEqual([expect.objectContaining({ status: 404, code: 'DF_ERR_NOT_FOUND' })])
    // The error handler adds to the request's line instead of writing its own.
    expect(lines.filter(l => l.msg === 'request rejected' || l.msg === 'request failed')).toEqual([])
    const text = JSON.stringify(lines)
    expect(text).not.toContain('wrong-token-value')
    expect(text).not.toContain('cookie-secret')
  })

  it('probes and the dashboard log at debug, a 204 has no body bytes', async () => {
    for (const path of ['/livez', '/metrics', '/']) await fetch(`${base}${path}`).then(async res => await res.text())
    await fetch(`${base}/api/v1/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(async res => await res.text())
    const hb = await fetch(`${base}${apiPaths.heartbeat(PEER)}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    expect(hb.status).toBe(204)
    await settle()
    for (const path of ['/livez', '/metrics', '/']) expect(requestLines('GET', path).map(l => l.level), path).toEqual([20])
    expect(requestLines('GET', '/api/v1/dashboard').map(l => l.level)).toEqual([20])
    expect(requestLines('POST', apiPaths.heartbeat(PEER))).toEqual([expect.objectContaining({ level: 30, status: 204, bytes: 0 })])
  })
})

describe('log redaction (LOG_REDACT)', () => {
  const secrets = ['s-authorization', 's-Authorization', 's-cookie', 's-token', 's-password', 's-harbor-header', 's-set-cookie', 's-preheat', 's-deep-auth', 's-api-key']
  const cases: Array<{ name: string, obj: Record<string, unknown> }> = [
    { name: 'top level', obj: { authorization: 'Bearer s-authorization', token: 's-token', password: 's-password' } },
    { name: 'request headers, either case', obj: { req: { headers: { Authorization: 'Basic s-Authorization', cookie: 's-cookie', 'set-cookie': 's-set-cookie' } } } },
    { name: 'Harbor preheat body: the whole args.headers map', obj: { body: { args: { url: 'http://r/v2/x/manifests/v1', headers: { 'X-Anything': 's-harbor-header' } } } } },
    { name: 'config-like objects', obj: { config: { preheatToken: 's-preheat' } } },
    { name: 'headers two levels down', obj: { job: { request: { headers: { authorization: 's-deep-auth', 'api-key': 's-api-key' } } } } }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const out: string[] = []
      const logger = pino({ redact: { paths: [...LOG_REDACT.paths], censor: LOG_REDACT.censor } }, { write: (s: string) => { out.push(s) } })
      logger.info(c.obj, 'x')
      for (const s of secrets) expect(out.join(''), s).not.toContain(s)
      expect(out.join('')).toContain('[redacted]')
    })
  }

  it('keeps what is not a secret', () => {
    const out: string[] = []
    const logger = pino({ redact: { paths: [...LOG_REDACT.paths], censor: LOG_REDACT.censor } }, { write: (s: string) => { out.push(s) } })
    logger.info({ taskId: 'sha256:abc', peerId: 'P', args: { url: 'http://r/v2/x/manifests/v1' } }, 'x')
    expect(JSON.parse(out[0]!)).toMatchObject({ taskId: 'sha256:abc', peerId: 'P', args: { url: 'http://r/v2/x/manifests/v1' } })
  })
})
