import type { z } from 'zod'
import { request, type Dispatcher } from 'undici'
import {
  DfError, announceResponse, apiErrorBody, apiPaths, dfError, piecesResponse, taskInfo,
  type AnnounceRequest, type AnnounceResponse, type PieceResult, type PiecesResponse, type RegisterTaskRequest, type TaskInfo
} from '@damselfly/proto'

export interface SupernodeClientInit {
  /** Base URLs; the first that answers is used until it stops answering. */
  urls: readonly string[]
  token?: string
  /** Deadline for ordinary calls. */
  timeoutMs?: number
  /** Deadline for task registration, which waits for the upstream's response headers. */
  registerTimeoutMs?: number
}

/**
 * Typed HTTP client for the supernode peer API (`/api/v1`), validating every reply with the proto
 * schemas. Transport failures move to the next configured supernode; when none answers the call
 * throws DF_ERR_SUPERNODE_UNAVAILABLE. API errors are rethrown as DfErrors carrying the server's code,
 * message, details and status.
 */
export class SupernodeClient {
  readonly #urls: readonly string[]
  readonly #token: string | undefined
  readonly #timeoutMs: number
  readonly #registerTimeoutMs: number
  #current = 0

  constructor (init: SupernodeClientInit) {
    if (init.urls.length === 0) throw new RangeError('at least one supernode URL is required')
    this.#urls = init.urls
    this.#token = init.token
    this.#timeoutMs = init.timeoutMs ?? 10_000
    this.#registerTimeoutMs = init.registerTimeoutMs ?? 120_000
  }

  /** The base URL currently in use. */
  get url (): string { return this.#urls[this.#current] as string }

  async announce (request: AnnounceRequest, signal?: AbortSignal): Promise<AnnounceResponse> {
    return await this.#call('POST', apiPaths.peers, { body: request, schema: announceResponse, signal })
  }

  /** `true` when acknowledged, `false` when the supernode does not know this peer (announce again). */
  async heartbeat (peerId: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#call('POST', apiPaths.heartbeat(peerId), { signal })
      return true
    } catch (err) {
      if (err instanceof DfError && err.code === 'DF_ERR_PEER_UNKNOWN') return false
      throw err
    }
  }

  async leave (peerId: string, signal?: AbortSignal): Promise<void> {
    await this.#call('DELETE', apiPaths.peer(peerId), { signal })
  }

  async registerTask (request: RegisterTaskRequest, signal?: AbortSignal): Promise<TaskInfo> {
    return await this.#call('POST', apiPaths.tasks, { body: request, schema: taskInfo, signal, timeoutMs: this.#registerTimeoutMs })
  }

  /**
   * Long-polls a task's pieces. `peerId` is required: the supernode lists the caller's lacking pieces
   * first and charges the assignments it hands out to it.
   */
  async pollPieces (digest: string, query: { peerId: string, since?: number, waitMs?: number, from?: number, window?: number }, signal?: AbortSignal): Promise<PiecesResponse> {
    const params = new URLSearchParams()
    params.set('peerId', query.peerId)
    if (query.from !== undefined) params.set('from', String(query.from))
    if (query.from !== undefined && query.window !== undefined) params.set('window', String(query.window))
    if (query.since !== undefined) params.set('since', String(query.since))
    if (query.waitMs !== undefined) params.set('waitMs', String(query.waitMs))
    const q = params.toString()
    return await this.#call('GET', `${apiPaths.pieces(digest)}${q === '' ? '' : `?${q}`}`, { schema: piecesResponse, signal, timeoutMs: this.#timeoutMs + (query.waitMs ?? 0) })
  }

  async reportPieces (digest: string, peerId: string, pieces: number[], signal?: AbortSignal): Promise<void> {
    await this.#call('POST', apiPaths.pieces(digest), { body: { peerId, pieces }, signal })
  }

  /** Reports how piece transfers went (`POST …/piece-results`), for the supernode's scheduler. */
  async reportPieceResults (digest: string, peerId: string, results: PieceResult[], signal?: AbortSignal): Promise<void> {
    await this.#call('POST', apiPaths.pieceResults(digest), { body: { peerId, results }, signal })
  }

  async #call<S extends z.ZodType = z.ZodUnknown> (method: string, path: string, options: { body?: unknown, schema?: S, signal?: AbortSignal | undefined, timeoutMs?: number }): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    let lastError: unknown
    for (let attempt = 0; attempt < this.#urls.length; attempt++) {
      const index = (this.#current + attempt) % this.#urls.length
      const timeout = AbortSignal.timeout(options.timeoutMs ?? this.#timeoutMs)
      const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
      let res: Dispatcher.ResponseData
      try {
        // undici's request(), not fetch(): fetch refuses "bad ports" (e.g. 9), which operators may use.
        res = await request(`${this.#urls[index] as string}${path}`, {
          method: method as Dispatcher.HttpMethod,
          headers,
          signal,
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
        })
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        lastError = err
        continue
      }
      this.#current = index
      const status = res.statusCode
      if (status >= 200 && status < 300) {
        if (options.schema === undefined) { await res.body.dump(); return undefined as z.infer<S> }
        const parsed = options.schema.safeParse(await res.body.json())
        if (!parsed.success) throw dfError('DF_ERR_PROTOCOL', `supernode ${method} ${path}: unexpected reply: ${parsed.error.message}`)
        return parsed.data
      }
      const text = await res.body.text()
      let body: unknown
      try { body = JSON.parse(text) } catch { /* not JSON: reported with the status below */ }
      const err = apiErrorBody.safeParse(body)
      if (err.success) {
        const e = err.data.error
        throw new DfError(e.code, e.message, { httpStatus: status, ...(e.details === undefined ? {} : { details: e.details }) })
      }
      throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `supernode ${method} ${path}: HTTP ${status}`, { details: { status } })
    }
    throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `no supernode answered ${method} ${path}: ${lastError instanceof Error ? (lastError.cause instanceof Error ? lastError.cause.message : lastError.message) : String(lastError)}`, { cause: lastError })
  }
}
