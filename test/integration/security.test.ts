import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { fetchPiece, isDfError, PIECE_PROTOCOL } from '@damselfly/proto'
import {
  basicAuthHeader, Cleanup, MiB, metricSum, metrics, rawHttp, repoRoot, startDfclient, startRegistry, startSupernode, stopAllProcesses,
  type DamselflyProcess, type Registry
} from '../harness/index.js'
import { pushedBlob, streamGet, waitFor, type PushedBlob } from '../harness/faults.js'

// Security with real processes: proof of access before cached or peer bytes are served (private
// registry with basic auth; an anonymous registry where a digest is linked into one repository
// only), credentials never on disk or in logs, the cluster token on every peer-API call, and the
// piece protocol serving registered peers only (a libp2p dialer the supernode never registered is
// refused by a dfclient and by the seed).

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('security tests need `npm run build` first')

const CREDS = { username: 'alice', password: 'S3cret-pull-pass-7781' }
const TOKEN = 'cluster-token-4f1c9a'

/** Every file under `dir`, read whole (caches hold only small test blobs). */
async function filesUnder (dir: string): Promise<Array<{ path: string, bytes: Buffer }>> {
  const out: Array<{ path: string, bytes: Buffer }> = []
  for (const name of await readdir(dir, { recursive: true })) {
    const path = join(dir, name)
    if ((await stat(path)).isFile()) out.push({ path, bytes: await readFile(path) })
  }
  return out
}

describe.skipIf(!built)('security: proof of access, secrets, cluster token, piece allow-list', () => {
  const cleanup = new Cleanup()
  let open: Registry
  let priv: Registry
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  let secretBlob: PushedBlob
  let privateBlob: PushedBlob
  const dirs: string[] = []
  const registries = (): Array<{ host: string, url: string }> => [{ host: open.host, url: open.url }, { host: priv.host, url: priv.url }]
  const privUrl = (df: DamselflyProcess, b: PushedBlob): string => `${df.httpUrl}/v2/private/app/blobs/${b.digest}?ns=${encodeURIComponent(priv.host)}`
  const auth = { authorization: basicAuthHeader(CREDS) }

  beforeAll(async () => {
    open = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('open registry', open.stop)
    priv = await startRegistry({ dir: await cleanup.tempDir(), auth: CREDS })
    cleanup.defer('private registry', priv.stop)
    privateBlob = await pushedBlob(priv, 'private/app', 'security-private', 6 * MiB)
    secretBlob = await pushedBlob(open, 'secret/app', 'security-unlinked', 1 * MiB)
    await pushedBlob(open, 'public/app', 'security-public', 1 * MiB)
    for (let i = 0; i < 3; i++) dirs.push(await cleanup.tempDir())
    supernode = await startSupernode({ dir: dirs[0]!, registries: registries(), token: TOKEN })
    cleanup.defer('supernode', supernode.stop)
    ;[dfA, dfB] = await Promise.all([
      startDfclient({ name: 'dfclient-a', dir: dirs[1]!, supernode: supernode.httpUrl, registries: registries(), token: TOKEN, defaultRegistry: open.host }),
      startDfclient({ name: 'dfclient-b', dir: dirs[2]!, supernode: supernode.httpUrl, registries: registries(), token: TOKEN, defaultRegistry: open.host })
    ])
    cleanup.defer('dfclient A', dfA.stop)
    cleanup.defer('dfclient B', dfB.stop)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('private registry: with credentials the blob is served (cache, then peers); without or with wrong ones the upstream\'s 401 is relayed and no cached or peer byte goes out', async () => {
    const ok = await streamGet(privUrl(dfA, privateBlob), { headers: auth })
    expect(ok.status).toBe(200)
    expect(ok.digest).toBe(privateBlob.digest)
    // Cached on A now; ask again without credentials and with wrong ones.
    for (const headers of [{}, { authorization: basicAuthHeader({ username: 'alice', password: 'wrong' }) }, { authorization: 'Bearer forged' }] as Array<Record<string, string>>) {
      for (const method of ['GET', 'HEAD']) {
        const r = await rawHttp(dfA.httpUrl, { method, path: new URL(privUrl(dfA, privateBlob)).pathname + new URL(privUrl(dfA, privateBlob)).search, headers })
        expect(r.status, `${method} with ${JSON.stringify(headers)}`).toBe(401)
        expect(String(r.headers['www-authenticate'])).toMatch(/^Basic realm=/)
        expect(r.headers['x-damselfly-source']).toBe('upstream')
        expect(r.body.length).toBeLessThan(1024)
      }
    }
    const ranged = await rawHttp(dfA.httpUrl, { path: new URL(privUrl(dfA, privateBlob)).pathname + new URL(privUrl(dfA, privateBlob)).search, headers: { range: 'bytes=0-99' } })
    expect(ranged.status).toBe(401)

    // B is cold; the pieces are on A and the seed. Without credentials nothing comes from P2P.
    const before = await metrics(dfB.httpUrl)
    const denied = await streamGet(privUrl(dfB, privateBlob))
    expect(denied.status).toBe(401)
    const mid = await metrics(dfB.httpUrl)
    expect(metricSum(mid, 'damselfly_blob_bytes_served_total', { source: 'p2p' })).toBe(metricSum(before, 'damselfly_blob_bytes_served_total', { source: 'p2p' }))
    expect(metricSum(mid, 'damselfly_access_checks_total', { result: 'denied' })).toBeGreaterThan(0)
    // With them: served over P2P (registered peers may fetch from A).
    const fromB = await streamGet(privUrl(dfB, privateBlob), { headers: auth })
    expect(fromB.digest).toBe(privateBlob.digest)
    expect(fromB.headers['x-damselfly-source']).toBe('p2p')
  })

  test('anonymous registry: a digest cached through one repository is not served under another that does not link it (the upstream\'s 404), and a readable blob costs one HEAD per TTL', async () => {
    const mark = open.mark()
    const checksBefore = metricSum(await metrics(dfA.httpUrl), 'damselfly_access_checks_total', { result: 'cached' })
    for (let i = 0; i < 6; i++) {
      const r = await streamGet(`${dfA.httpUrl}/v2/secret/app/blobs/${secretBlob.digest}`)
      expect(r.digest).toBe(secretBlob.digest)
    }
    await open.waitForLogEntries(mark + 2)
    const heads = open.accessLog().slice(mark).filter(e => e.method === 'HEAD' && e.path.endsWith(secretBlob.digest))
    expect(heads, 'one proof-of-access HEAD for six GETs').toHaveLength(1)
    expect(metricSum(await metrics(dfA.httpUrl), 'damselfly_access_checks_total', { result: 'cached' }) - checksBefore).toBeGreaterThanOrEqual(5)
    // Cached on A, but public/app does not link it: the registry says 404, so does the mirror.
    const cross = await rawHttp(dfA.httpUrl, { path: `/v2/public/app/blobs/${secretBlob.digest}` })
    expect(cross.status).toBe(404)
    expect(cross.json?.errors?.[0]?.code).toBe('BLOB_UNKNOWN')
    expect(cross.headers['x-damselfly-source']).toBe('upstream')
  })

  test('credentials are never written to disk or logged (data dirs, logs, process output of all three)', async () => {
    const secrets = [CREDS.password, basicAuthHeader(CREDS).slice('Basic '.length), TOKEN]
    const leaks: string[] = []
    for (const dir of dirs) {
      for (const f of await filesUnder(dir)) {
        for (const s of secrets) if (f.bytes.includes(s)) leaks.push(`${f.path} holds ${s.slice(0, 6)}…`)
      }
    }
    for (const p of [supernode, dfA, dfB]) {
      const out = p.process.output()
      for (const s of secrets) if (out.includes(s)) leaks.push(`${p.process.name} output holds ${s.slice(0, 6)}…`)
    }
    expect(leaks).toEqual([])
  })

  test('cluster token: every peer-API route refuses a call without it (401), the dfclients send it on every call, a dfclient with a wrong one falls back to the upstream', async () => {
    const D = `sha256:${'b'.repeat(64)}`
    const peer = dfA.peerId
    const refusals = (): number => supernode.process.lines('stdout').filter(l => l.line.includes('DF_ERR_UNAUTHORIZED')).length
    // A and B have been announcing, heartbeating, polling the preheat feed and the allow-list,
    // registering tasks and reporting pieces since the start: none of it was refused.
    expect(refusals()).toBe(0)
    const routes: Array<[string, string]> = [
      ['POST', '/api/v1/peers'], ['POST', `/api/v1/peers/${peer}/heartbeat`], ['DELETE', `/api/v1/peers/${peer}`], ['POST', '/api/v1/tasks'],
      ['GET', `/api/v1/tasks/${D}/pieces`], ['POST', `/api/v1/tasks/${D}/pieces`], ['POST', `/api/v1/tasks/${D}/piece-results`],
      ['GET', `/api/v1/peers/${peer}/preheats?waitMs=0`], ['POST', `/api/v1/peers/${peer}/preheats/1/results`], ['GET', '/api/v1/allowed-peers']
    ]
    for (const [method, path] of routes) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
        const r = await rawHttp(supernode.httpUrl, { method, path, headers: { ...headers, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined })
        expect(r.status, `${method} ${path}`).toBe(401)
        expect(r.json?.error?.code).toBe('DF_ERR_UNAUTHORIZED')
      }
    }
    // The refusals above are logged, so the zero before was a real zero.
    await waitFor(() => refusals() >= routes.length * 2, 5000, 'the refusals in the supernode log')
    expect(metricSum(await metrics(supernode.httpUrl), 'damselfly_peers')).toBe(2)
    const bad = await startDfclient({ name: 'dfclient-wrong-token', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries(), token: 'wrong', defaultRegistry: open.host })
    cleanup.defer('dfclient wrong token', bad.stop)
    const blob = await pushedBlob(open, 'public/app', 'security-token', 1 * MiB)
    const r = await streamGet(`${bad.httpUrl}/v2/public/app/blobs/${blob.digest}`)
    expect(r.digest).toBe(blob.digest)
    expect(r.headers['x-damselfly-source']).toBe('upstream')
    expect(metricSum(await metrics(bad.httpUrl), 'damselfly_upstream_fallbacks_total')).toBeGreaterThan(0)
    expect(metricSum(await metrics(supernode.httpUrl), 'damselfly_peers')).toBe(2)
  })

  test('piece protocol: a libp2p dialer the supernode never registered is refused by a dfclient and by the seed, even for pieces they hold', async () => {
    const rogue: Libp2p = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [tls(), noise()], streamMuxers: [yamux()] })
    try {
      const blob = await pushedBlob(open, 'public/app', 'security-rogue', 4 * MiB)
      expect((await streamGet(`${dfA.httpUrl}/v2/public/app/blobs/${blob.digest}`)).digest).toBe(blob.digest)
      await waitFor(async () => (await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces`, { headers: { authorization: `Bearer ${TOKEN}` } })).statusCode === 200, 5000, 'the task')
      const pieces = await (await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.json() as { pieces: Array<{ index: number, digest: string }> }
      const piece = pieces.pieces[0]!
      for (const target of [dfA.p2pAddrs[0]!, supernode.p2pAddrs[0]!]) {
        const stream = await rogue.dialProtocol(multiaddr(target), PIECE_PROTOCOL)
        const err: unknown = await fetchPiece(stream, { taskId: blob.digest, index: piece.index }, { size: Math.min(4 * MiB, blob.size), digest: piece.digest }, { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e)
        expect(isDfError(err) && err.code, `dialling ${target}`).toBe('DF_ERR_PEER_NOT_ALLOWED')
      }
      await dfA.process.waitForLine(l => l.includes('piece refused') && l.includes(rogue.peerId.toString()), 5000)
      await supernode.process.waitForLine(l => l.includes('piece refused') && l.includes(rogue.peerId.toString()), 5000)
      // A registered peer still gets pieces from A.
      const before = metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_bytes_received_total', { from: 'peer' })
      expect((await streamGet(`${dfB.httpUrl}/v2/public/app/blobs/${blob.digest}`)).digest).toBe(blob.digest)
      expect(metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_bytes_received_total', { from: 'peer' })).toBeGreaterThan(before)
    } finally {
      await rogue.stop()
    }
  })
})
