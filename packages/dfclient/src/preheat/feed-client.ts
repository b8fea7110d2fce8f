import { request, type Dispatcher } from 'undici'
import { apiErrorBody, apiPaths, DfError, dfError, preheatFeedResponse, type PreheatBlobResult, type PreheatFeedResponse } from '@damselfly/proto'

/** The supernode's preheat feed, as the follower needs it (the port; tests use a fake). */
export interface PreheatFeed {
  poll: (peerId: string, query: { since?: number, waitMs: number, hostname: string }, signal: AbortSignal) => Promise<PreheatFeedResponse>
  report: (peerId: string, id: string, results: PreheatBlobResult[], signal: AbortSignal) => Promise<void>
}

export interface PreheatFeedClientInit {
  /** Supernode base URLs; the first that answers is used until it stops answering. */
  urls: readonly string[]
  token?: string | undefined
  timeoutMs?: number
}

/**
 * HTTP client for the preheat feed (`/api/v1/peers/:peerId/preheats`), validating replies with the
 * proto schemas. Kept apart from the peer API client: it is the only caller of these two routes.
 */
export class PreheatFeedClient implements PreheatFeed {
  readonly #urls: readonly string[]
  readonly #token: string | undefined
  readonly #timeoutMs: number
  #current = 0

  constructor (init: PreheatFeedClientInit) {
    if (init.urls.length === 0) throw new RangeError('at least one supernode URL is required')
    this.#urls = init.urls
    this.#token = init.token
    this.#timeoutMs = init.timeoutMs ?? 10_000
  }

  async poll (peerId: string, query: { since?: number, waitMs: number, hostname: string }, signal: AbortSignal): Promise<PreheatFeedResponse> {
    const params = new URLSearchParams({ waitMs: String(query.waitMs), hostname: query.hostname })
    if (query.since !== undefined) params.set('since', String(query.since))
    const body = await this.#call('GET', `${apiPaths.preheatFeed(peerId)}?${params.toString()}`, undefined, signal, this.#timeoutMs + query.waitMs)
    const parsed = preheatFeedResponse.safeParse(body)
    if (!parsed.success) throw dfError('DF_ERR_PROTOCOL', `supernode preheat feed: unexpected reply: ${parsed.error.message}`)
    return parsed.data
  }

  async report (peerId: string, id: string, results: PreheatBlobResult[], signal: AbortSignal): Promise<void> {
    await this.#call('POST', apiPaths.preheatResults(peerId, id), { results }, signal, this.#timeoutMs)
  }

  async #call (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    let lastError: unknown
    for (let attempt = 0; attempt < this.#urls.length; attempt++) {
      const index = (this.#current + attempt) % this.#urls.length
      let res: Dispatcher.ResponseData
      try {
        res = await request(`${this.#urls[index] as string}${path}`, {
          method,
          headers,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
      } catch (err) {
        if (signal.aborted) throw err
        lastError = err
        continue
      }
      this.#current = index
      const text = await res.body.text()
      let json: unknown
      try { json = text === '' ? undefined : JSON.parse(text) } catch { /* not JSON: reported with the status below */ }
      if (res.statusCode >= 200 && res.statusCode < 300) return json
      const err = apiErrorBody.safeParse(json)
      if (err.success) throw new DfError(err.data.error.code, err.data.error.message, { httpStatus: res.statusCode })
      throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `supernode ${method} ${path}: HTTP ${res.statusCode}`, { details: { status: res.statusCode } })
    }
    throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `no supernode answered ${method} ${path}: ${lastError instanceof Error ? lastError.message : String(lastError)}`, { cause: lastError })
  }
}
