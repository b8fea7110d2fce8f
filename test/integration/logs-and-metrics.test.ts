import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, basicAuthHeader, buildTestImage, currentCreateBody, dockerClassicPull, harborCall, imageBlobs, metricSum,
  metrics, pollCurrentJob, pushImage, rawHttp, repoRoot, startDfclient, startRegistry, startSupernode, stopAllProcesses,
  type DamselflyProcess, type HarborAuth, type Registry, type TestImage
} from '../harness/index.js'

// Logs and metrics of the real binaries, as an operator gets them: a supernode and a dfclient started
// with secrets on their command lines (cluster token, preheat token, registry credentials), at debug
// level, then a basic-auth pull through the mirror, a Harbor preheat carrying the registry login in
// `args.headers`, and requests with cookies and wrong tokens. No secret may reach either log; every
// HTTP request ends in exactly one line; preheat bytes are counted as upstream bytes.

const CREDS = { username: 'logs-user', password: 'registry-password-ZX81' }
const CLUSTER_TOKEN = 'cluster-token-QL7742'
const PREHEAT_TOKEN = 'preheat-token-BBC128'
const COOKIE = 'session-cookie-C64C64'
const OAUTH: HarborAuth = { mode: 'OAUTH', token: PREHEAT_TOKEN }
const SECRETS = [CREDS.password, CLUSTER_TOKEN, PREHEAT_TOKEN, COOKIE, basicAuthHeader(CREDS).replace(/^Basic /, '')]

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('log tests need `npm run build` first')

/** The pino JSON lines of a process log (the `out| {…}` lines of the harness's log file). */
async function jsonLines (logFile: string): Promise<Array<Record<string, any>>> {
  const text = await readFile(logFile, 'utf8')
  return text.split('\n').map((l) => /^out\| ?(\{.*)$/.exec(l)?.[1]).filter((l): l is string => l !== undefined).map((l) => JSON.parse(l))
}

/** Waits for the log file to hold `n` request lines matching `match` (the line follows the response). */
async function requestLines (p: DamselflyProcess, match: (l: Record<string, any>) => boolean, n: number): Promise<Array<Record<string, any>>> {
  let got: Array<Record<string, any>> = []
  for (let i = 0; i < 40; i++) {
    got = (await jsonLines(p.process.logFile)).filter((l) => l.msg === 'request completed' && match(l))
    if (got.length >= n) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return got
}

describe.skipIf(!built)('logs and metrics of the real binaries', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let pulled: TestImage
  let preheated: TestImage
  let supernode: DamselflyProcess
  let dfclient: DamselflyProcess

  beforeAll(async () => {
    pulled = await buildTestImage({ sizes: [1 * MiB, 2 * MiB], seed: 'logs-pulled' })
    preheated = await buildTestImage({ sizes: [1 * MiB, 3 * MiB], seed: 'logs-preheated' })
    registry = await startRegistry({ dir: await cleanup.tempDir(), auth: CREDS })
    cleanup.defer('registry', registry.stop)
    await pushImage({ url: registry.url, auth: CREDS }, 'private/pulled', 'v1', pulled)
    await pushImage({ url: registry.url, auth: CREDS }, 'private/preheated', 'v1', preheated)
    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({
      dir: await cleanup.tempDir(),
      registries,
      token: CLUSTER_TOKEN,
      logLevel: 'debug',
      extraArgs: ['--preheat-token', PREHEAT_TOKEN, '--registry-auth', `${registry.host}=${CREDS.username}:${CREDS.password}`]
    })
    cleanup.defer('supernode', supernode.stop)
    dfclient = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, token: CLUSTER_TOKEN, logLevel: 'debug' })
    cleanup.defer('dfclient', dfclient.stop)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('a basic-auth pull through the mirror, then a Harbor preheat: preheat bytes count as upstream bytes', async () => {
    const r = await dockerClassicPull(dfclient.httpUrl, 'private/pulled', 'v1', { auth: CREDS })
    expect(r.blobs).toHaveLength(imageBlobs(pulled).length)

    const before = metricSum(await metrics(supernode.httpUrl), 'damselfly_upstream_bytes_total')
    const url = `${registry.url}/v2/private/preheated/manifests/v1`
    const created = await harborCall(supernode.httpUrl, 'POST', '/oapi/v1/jobs', OAUTH, currentCreateBody(url, { Authorization: basicAuthHeader(CREDS), Cookie: COOKIE }))
    expect(created.status, created.body.toString()).toBe(200)
    const done = await pollCurrentJob(supernode.httpUrl, created.json.id as number, OAUTH)
    expect(done.state).toBe('SUCCESS')
    const after = metricSum(await metrics(supernode.httpUrl), 'damselfly_upstream_bytes_total')
    // The manifest the preheat read plus every blob it seeded: each byte the registry sent.
    expect(after - before).toBe(preheated.manifest.data.length + imageBlobs(preheated).reduce((n, b) => n + b.size, 0))

    // Reported transfers: the dfclient got every piece of the pulled image from the seed.
    const sn = await metrics(supernode.httpUrl)
    expect(metricSum(sn, 'damselfly_swarm_piece_bytes_total', { from: 'supernode' }) + metricSum(sn, 'damselfly_swarm_piece_bytes_total', { from: 'peer' }))
      .toBeGreaterThan(0)
  })

  test('exactly one log line per HTTP request on both servers, with method, path, status, bytes and ms', async () => {
    // Docker's pull above pinged /v2/ too: count from here on.
    const seen = (await requestLines(dfclient, (l) => l.path === '/v2/', 0)).length
    for (let i = 0; i < 3; i++) {
      const m = await rawHttp(dfclient.httpUrl, { method: 'GET', path: '/v2/', headers: { cookie: `c=${COOKIE}`, authorization: basicAuthHeader(CREDS) } })
      expect(m.status).toBe(200)
      const s = await harborCall(supernode.httpUrl, 'GET', '/healthy', OAUTH)
      expect(s.status).toBe(200)
    }
    const refused = await rawHttp(supernode.httpUrl, { method: 'POST', path: '/api/v1/peers', headers: { authorization: 'Bearer not-the-cluster-token', cookie: COOKIE, 'content-type': 'application/json' }, body: '{}' })
    expect(refused.status).toBe(401)

    const mirrorLines = (await requestLines(dfclient, (l) => l.method === 'GET' && l.path === '/v2/', seen + 3)).slice(seen)
    expect(mirrorLines).toHaveLength(3)
    const healthy = await requestLines(supernode, (l) => l.method === 'GET' && l.path === '/healthy', 3)
    expect(healthy).toHaveLength(3)
    const unauthorized = await requestLines(supernode, (l) => l.method === 'POST' && l.path === '/api/v1/peers' && l.status === 401, 1)
    expect(unauthorized).toHaveLength(1)
    expect(unauthorized[0]).toMatchObject({ code: 'DF_ERR_UNAUTHORIZED' })
    for (const l of [...mirrorLines, ...healthy, ...unauthorized]) {
      expect(Object.keys(l)).toEqual(expect.arrayContaining(['method', 'path', 'status', 'bytes', 'ms']))
    }
    expect(healthy[0]!.bytes).toBe(Buffer.byteLength('"OK"'))
    // Nothing else writes a line of its own for a request.
    const sn = await jsonLines(supernode.process.logFile)
    expect(sn.filter((l) => l.msg === 'request rejected' || l.msg === 'request failed')).toEqual([])
  })

  test('JSON logs carry taskId and peerId, and no secret reaches either log', async () => {
    const sn = await jsonLines(supernode.process.logFile)
    const df = await jsonLines(dfclient.process.logFile)
    const digest = imageBlobs(pulled)[1]!.digest
    expect(sn.some((l) => l.taskId === digest && l.msg === 'back-to-source fetch starting')).toBe(true)
    expect(sn.some((l) => l.msg === 'request completed' && l.peerId === dfclient.peerId)).toBe(true)
    expect(df.length).toBeGreaterThan(0)
    for (const p of [supernode, dfclient]) {
      const text = await readFile(p.process.logFile, 'utf8')
      for (const secret of SECRETS) expect(text.includes(secret), `${p.process.name} log contains ${secret}`).toBe(false)
    }
  })
})
