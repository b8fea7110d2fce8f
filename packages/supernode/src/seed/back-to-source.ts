import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import type { Logger } from 'pino'
import { Digester, dfError, layoutFor, parseDigest, taskIdFor, type Digest, type TaskInfo } from '@damselfly/proto'
import type { TaskBoard } from '../tasks/task-board.js'
import type { TaskRecord } from '../tasks/task-store.js'
import type { BlobFiles } from './blob-files.js'
import type { UpstreamBody, UpstreamFetcher } from './upstream-fetch.js'

/** Default bound on simultaneous back-to-source fetches; beyond it registers get DF_ERR_TOO_MANY_TASKS. */
export const DEFAULT_MAX_CONCURRENT_FETCHES = 16

/** Size of the staged writes of upstream bytes to the blob file. */
const WRITE_BATCH = 1024 * 1024

export interface BackToSourceInit {
  board: TaskBoard
  files: BlobFiles
  fetchUpstream: UpstreamFetcher
  logger: Logger
  maxConcurrent?: number
  now?: () => number
  /** Counts upstream body bytes (damselfly_upstream_bytes_total). */
  onUpstreamBytes?: (n: number) => void
  /** Called when a task fails, so holders of its (bad) pieces can be forgotten. */
  onTaskFailed?: (taskId: string) => void
}

export interface RegisterInput {
  digest: string
  url: string
  /** Forwarded to upstream for this fetch only; never stored or logged. */
  authorization?: string | undefined
}

interface Flight {
  /** Resolves with the record once the upstream answered 200 with a size; rejects otherwise. */
  ready: Promise<TaskRecord>
  /** Settles when the fetch is over, whatever the outcome. */
  done: Promise<void>
  abort: AbortController
}

export function taskInfoOf (record: TaskRecord): TaskInfo {
  return {
    taskId: record.taskId,
    digest: record.taskId,
    size: record.size,
    pieceSize: record.pieceSize,
    pieceCount: record.pieceCount,
    state: record.state
  }
}

/**
 * The seed's back-to-source fetch, single-flight per digest. Bytes go to a `.partial` file; each piece
 * is hashed as its last byte is written and its digest published at once (so peers can fetch piece 0
 * while piece 40 is in flight); at the end the whole blob is checked against its digest, fsynced and
 * renamed. Any failure marks the task failed and deletes its data; a later register retries.
 */
export class BackToSource {
  readonly #init: BackToSourceInit
  readonly #max: number
  readonly #now: () => number
  readonly #flights = new Map<string, Flight>()
  #stopping = false

  constructor (init: BackToSourceInit) {
    this.#init = init
    this.#max = init.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_FETCHES
    this.#now = init.now ?? Date.now
  }

  get activeFetches (): number { return this.#flights.size }

  /** Resolves with the task once its size is known (at once for a verified blob on disk). */
  async register (input: RegisterInput): Promise<TaskInfo> {
    if (this.#stopping) throw dfError('DF_ERR_SHUTTING_DOWN', 'supernode is stopping')
    const digest = parseDigest(input.digest)
    // The URL is the caller's word: it must at least be a registry blob URL, so a task cannot make
    // the supernode GET any path it likes (which hosts it may reach is the fetcher's policy).
    if (!isBlobUrl(input.url)) {
      throw dfError('DF_ERR_BAD_REQUEST', `task url must be a registry blob URL (<registry>/v2/<name>/blobs/<digest>), got ${JSON.stringify(redactUrl(input.url))}`)
    }
    const taskId = taskIdFor(digest)
    const joined = this.#flights.get(taskId)
    if (joined !== undefined) return this.#current(await joined.ready)

    const record = this.#init.board.record(taskId)
    if (record?.state === 'succeeded') {
      if (await this.#init.files.hasComplete(digest, record.size)) return taskInfoOf(record)
      this.#init.logger.warn({ taskId }, 'verified blob missing from disk; fetching it again')
      await this.#init.board.forget(taskId)
    }
    // Another register may have started the fetch while we checked the disk.
    const raced = this.#flights.get(taskId)
    if (raced !== undefined) return this.#current(await raced.ready)
    if (this.#flights.size >= this.#max) {
      throw dfError('DF_ERR_TOO_MANY_TASKS', `already ${this.#flights.size} back-to-source fetches running`, { details: { limit: this.#max } })
    }
    return this.#current(await this.#start(digest, input).ready)
  }

  /** Aborts every fetch and waits until each has cleaned up. */
  async stop (): Promise<void> {
    this.#stopping = true
    const flights = [...this.#flights.values()]
    for (const f of flights) f.abort.abort(dfError('DF_ERR_SHUTTING_DOWN', 'supernode is stopping'))
    await Promise.allSettled(flights.map(async f => { await f.done }))
  }

  /** The freshest view of a task: a joiner may arrive after the fetch already finished. */
  #current (fallback: TaskRecord): TaskInfo {
    return taskInfoOf(this.#init.board.record(fallback.taskId) ?? fallback)
  }

  #start (digest: Digest, input: RegisterInput): Flight {
    const taskId = taskIdFor(digest)
    const abort = new AbortController()
    let resolveReady!: (r: TaskRecord) => void
    let rejectReady!: (err: unknown) => void
    const readyPromise = new Promise<TaskRecord>((resolve, reject) => { resolveReady = resolve; rejectReady = reject })
    // Joiners may never await `ready` if it rejects after they left; never let that be unhandled.
    readyPromise.catch(() => {})
    const log = this.#init.logger.child({ taskId })
    const run = async (): Promise<void> => {
      let upstream: UpstreamBody
      let record: TaskRecord
      try {
        log.info({ url: redactUrl(input.url) }, 'back-to-source fetch starting')
        upstream = await this.#init.fetchUpstream(input.url, { authorization: input.authorization, signal: abort.signal })
        const layout = layoutFor(upstream.size)
        record = { taskId, size: layout.size, pieceSize: layout.pieceSize, pieceCount: layout.pieceCount, state: 'running', createdAt: this.#now() }
        try {
          await this.#init.board.begin(record)
        } catch (err) {
          upstream.cancel()
          throw err
        }
      } catch (err) {
        log.info({ err }, 'back-to-source fetch refused before the body')
        rejectReady(err)
        return
      }
      resolveReady(record)
      const started = this.#now()
      try {
        await this.#download(digest, record, upstream, abort.signal)
        await this.#init.board.finish(taskId, 'succeeded')
        log.info({ size: record.size, ms: this.#now() - started }, 'back-to-source fetch verified')
      } catch (err) {
        upstream.cancel()
        log.warn({ err }, 'back-to-source fetch failed; task marked failed and data dropped')
        await this.#init.files.remove(digest).catch((e: unknown) => { log.error({ err: e }, 'could not delete blob data') })
        this.#init.onTaskFailed?.(taskId)
        await this.#init.board.finish(taskId, 'failed').catch((e: unknown) => { log.error({ err: e }, 'could not record task failure') })
      }
    }
    const flight: Flight = {
      ready: readyPromise,
      abort,
      done: run().finally(() => { this.#flights.delete(taskId) })
    }
    this.#flights.set(taskId, flight)
    return flight
  }

  async #download (digest: Digest, record: TaskRecord, upstream: UpstreamBody, signal: AbortSignal): Promise<void> {
    const { taskId, size, pieceSize } = record
    const handle: FileHandle = await this.#init.files.create(digest)
    let committed = false
    try {
      const whole = new Digester(digest.algorithm)
      let pieceHash = createHash('sha256')
      let pieceIndex = 0
      let offset = 0
      // Upstream chunks are small (≈16–64 KiB): staging them into 1 MiB writes cuts the file writes
      // (a threadpool round trip and a promise each) 16–64-fold. Staged bytes are flushed before a
      // piece is published, so a published piece is always readable from the file.
      const stage = Buffer.allocUnsafe(WRITE_BATCH)
      let staged = 0
      let written = 0
      const flush = async (): Promise<void> => {
        let done = 0
        while (done < staged) {
          const { bytesWritten } = await handle.write(stage, done, staged - done, written + done)
          done += bytesWritten
        }
        written += staged
        staged = 0
      }
      for await (const chunk of upstream.body) {
        signal.throwIfAborted()
        if (offset + chunk.byteLength > size) {
          throw dfError('DF_ERR_SIZE_MISMATCH', `upstream sent more than the announced ${size} bytes for ${taskId}`)
        }
        whole.update(chunk)
        this.#init.onUpstreamBytes?.(chunk.byteLength)
        // A chunk may end one piece and start the next: hash each slice into its own piece.
        let pos = 0
        while (pos < chunk.byteLength) {
          const pieceEnd = Math.min((pieceIndex + 1) * pieceSize, size)
          const take = Math.min(chunk.byteLength - pos, pieceEnd - (offset + pos), WRITE_BATCH - staged)
          const part = chunk.subarray(pos, pos + take)
          pieceHash.update(part)
          stage.set(part, staged)
          staged += take
          pos += take
          if (offset + pos === pieceEnd) {
            await flush()
            await this.#init.board.publishPiece(taskId, pieceIndex, `sha256:${pieceHash.digest('hex')}`)
            pieceIndex++
            pieceHash = createHash('sha256')
          } else if (staged === WRITE_BATCH) {
            await flush()
          }
        }
        offset += chunk.byteLength
      }
      await flush()
      signal.throwIfAborted()
      if (offset !== size) throw dfError('DF_ERR_SIZE_MISMATCH', `upstream ended after ${offset} of ${size} bytes for ${taskId}`)
      const actual = whole.digest()
      if (actual !== digest.value) throw dfError('DF_ERR_BLOB_DIGEST_MISMATCH', `upstream bytes hash to ${actual}, not ${digest.value}`)
      await this.#init.files.commit(digest, handle)
      committed = true
    } finally {
      if (!committed) await handle.close().catch(() => { /* already closed or never usable; data is deleted next */ })
    }
  }
}

function isBlobUrl (url: string): boolean {
  try {
    const u = new URL(url)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && /\/v2\/.+\/blobs\/[^/]+$/.test(u.pathname)
  } catch {
    return false
  }
}

/** The URL without query string or userinfo, safe to log (pre-signed redirects carry secrets in queries). */
function redactUrl (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(invalid url)'
  }
}
