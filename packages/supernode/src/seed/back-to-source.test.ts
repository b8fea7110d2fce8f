import { createHash } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isDfError, layoutFor, parseDigest, pieceRange } from '@damselfly/proto'
import { blob, serveBytes, startFakeUpstream, type FakeUpstream } from '../test-support/fake-upstream.js'
import { MemoryTaskStore } from '../tasks/memory-task-store.js'
import { TaskBoard } from '../tasks/task-board.js'
import { BackToSource } from './back-to-source.js'
import { BlobFiles } from './blob-files.js'
import { createUpstreamFetcher } from './upstream-fetch.js'

const SIZE = 10 * 1024 * 1024 + 12345
const big = blob(SIZE)
let dir: string
let upstream: FakeUpstream
let board: TaskBoard
let files: BlobFiles
let seeder: BackToSource
let bytes = 0
let releaseGate: () => void = () => {}

async function settle (taskId: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const s = board.record(taskId)?.state
    if (s !== undefined && s !== 'running') return s
    await board.waitForChange(taskId, Number.MAX_SAFE_INTEGER, 50)
  }
  throw new Error('task did not settle')
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sn-seed-'))
  upstream = await startFakeUpstream({
    '/v2/x/blobs/good': serveBytes(big.data, 30),
    '/v2/x/blobs/redirect': (res) => { res.writeHead(307, { location: '/v2/x/blobs/good' }).end() },
    '/v2/x/blobs/private': (res, headers) => {
      if (headers.authorization !== 'Bearer t0k') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg"' }).end()
      } else serveBytes(big.data)(res, headers)
    },
    '/v2/x/blobs/chunked': (res) => { res.writeHead(200); res.end('no length here') },
    // Sends the first 5 MiB, then waits for the test to open the gate.
    '/v2/x/blobs/gated': (res) => {
      res.writeHead(200, { 'content-length': String(SIZE) })
      res.write(big.data.subarray(0, 5 * 1024 * 1024))
      releaseGate = () => { res.end(big.data.subarray(5 * 1024 * 1024)) }
    },
    '/v2/x/blobs/elsewhere': (res) => { res.writeHead(302, { location: upstream.url('/v2/x/blobs/good').replace('127.0.0.1', 'localhost') }).end() }
  })
  board = new TaskBoard(new MemoryTaskStore())
  files = new BlobFiles(dir)
  bytes = 0
  seeder = new BackToSource({ board, files, fetchUpstream: createUpstreamFetcher(), logger: pino({ level: 'silent' }), onUpstreamBytes: n => { bytes += n } })
})

afterEach(async () => {
  await seeder.stop()
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

describe('BackToSource', () => {
  it('fetches once, publishes correct piece digests, verifies and commits', async () => {
    const info = await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/good') })
    const layout = layoutFor(SIZE)
    expect(info).toMatchObject({ taskId: big.digest, size: SIZE, pieceSize: layout.pieceSize, pieceCount: layout.pieceCount, state: 'running' })
    expect(await settle(big.digest)).toBe('succeeded')
    const task = await board.get(big.digest)
    expect(task?.pieces.size).toBe(layout.pieceCount)
    for (let i = 0; i < layout.pieceCount; i++) {
      const r = pieceRange(layout, i)
      const want = `sha256:${createHash('sha256').update(big.data.subarray(r.start, r.end)).digest('hex')}`
      expect(task?.pieces.get(i)).toBe(want)
    }
    const d = parseDigest(big.digest)
    expect((await readFile(files.finalPath(d))).equals(big.data)).toBe(true)
    expect(bytes).toBe(SIZE)
    // A known succeeded task answers without contacting upstream.
    const again = await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/good') })
    expect(again.state).toBe('succeeded')
    expect(upstream.requests).toHaveLength(1)
  })

  it('single-flights concurrent registers into one upstream GET', async () => {
    const url = upstream.url('/v2/x/blobs/good')
    const infos = await Promise.all(Array.from({ length: 5 }, async () => await seeder.register({ digest: big.digest, url })))
    expect(new Set(infos.map(i => i.taskId)).size).toBe(1)
    expect(await settle(big.digest)).toBe('succeeded')
    expect(upstream.requests).toHaveLength(1)
  })

  it('marks a digest mismatch failed, deletes the data, and retries from scratch later', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`
    await seeder.register({ digest: wrong, url: upstream.url('/v2/x/blobs/good') })
    expect(await settle(wrong)).toBe('failed')
    expect((await board.get(wrong))?.pieces.size).toBe(0)
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([])
    const retry = await seeder.register({ digest: wrong, url: upstream.url('/v2/x/blobs/good') })
    expect(retry.state).toBe('running')
    expect(await settle(wrong)).toBe('failed')
    expect(upstream.requests).toHaveLength(2)
  })

  it('follows redirects', async () => {
    await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/redirect') })
    expect(await settle(big.digest)).toBe('succeeded')
  })

  it('maps upstream 401 to DF_ERR_UPSTREAM_REJECTED with status and WWW-Authenticate', async () => {
    const err: unknown = await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/private') }).catch((e: unknown) => e)
    expect(isDfError(err) && err.code).toBe('DF_ERR_UPSTREAM_REJECTED')
    expect(isDfError(err) && err.details).toEqual({ status: 401, wwwAuthenticate: 'Bearer realm="https://auth.example/token",service="reg"' })
    expect(board.record(big.digest)).toBeUndefined()
    // With the client's credentials forwarded, the same blob succeeds.
    await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/private'), authorization: 'Bearer t0k' })
    expect(await settle(big.digest)).toBe('succeeded')
  })

  it('refuses a body without Content-Length and an unreachable upstream', async () => {
    const a: unknown = await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/chunked') }).catch((e: unknown) => e)
    expect(isDfError(a) && a.code).toBe('DF_ERR_UPSTREAM_SIZE_UNKNOWN')
    const b: unknown = await seeder.register({ digest: big.digest, url: 'http://127.0.0.1:1/v2/x/blobs/y' }).catch((e: unknown) => e)
    expect(isDfError(b) && b.code).toBe('DF_ERR_UPSTREAM_UNREACHABLE')
  })

  it('publishes a piece and serves its bytes from the partial file before the blob completes', async () => {
    await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/gated') })
    const layout = layoutFor(SIZE)
    const r0 = pieceRange(layout, 0)
    let task = await board.get(big.digest)
    for (let i = 0; i < 100 && task?.pieces.has(0) !== true; i++) {
      await board.waitForChange(big.digest, task?.version ?? 0, 100)
      task = await board.get(big.digest)
    }
    expect(task?.record.state).toBe('running')
    expect(task?.pieces.has(0)).toBe(true)
    expect(task?.pieces.has(1)).toBe(false)
    const chunks: Uint8Array[] = []
    for await (const c of await files.openRange(parseDigest(big.digest), r0.start, r0.end)) chunks.push(c)
    expect(Buffer.concat(chunks).equals(big.data.subarray(r0.start, r0.end))).toBe(true)
    releaseGate()
    expect(await settle(big.digest)).toBe('succeeded')
  })

  it('drops Authorization when a redirect changes host', async () => {
    await seeder.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/elsewhere'), authorization: 'Bearer secret' })
    expect(await settle(big.digest)).toBe('succeeded')
    expect(upstream.requests.map(r => [r.path, r.headers.authorization])).toEqual([
      ['/v2/x/blobs/elsewhere', 'Bearer secret'],
      ['/v2/x/blobs/good', undefined]
    ])
  })

  it('refuses fetches beyond the concurrency bound with DF_ERR_TOO_MANY_TASKS', async () => {
    const limited = new BackToSource({ board, files, fetchUpstream: createUpstreamFetcher(), logger: pino({ level: 'silent' }), maxConcurrent: 1 })
    await limited.register({ digest: big.digest, url: upstream.url('/v2/x/blobs/gated') })
    const err: unknown = await limited.register({ digest: `sha256:${'1'.repeat(64)}`, url: upstream.url('/v2/x/blobs/good') }).catch((e: unknown) => e)
    expect(isDfError(err) && err.code).toBe('DF_ERR_TOO_MANY_TASKS')
    expect(isDfError(err) && err.httpStatus).toBe(503)
    // Stopping aborts the gated fetch: the task ends failed and its partial file is gone.
    await limited.stop()
    expect(board.record(big.digest)?.state).toBe('failed')
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([])
  })
})
