import { createHmac, randomBytes } from 'node:crypto'
import type { HeaderMap, UpstreamClient } from './upstream.js'

/** What a check is about: this client's credentials, reading this blob in this repository upstream. */
export interface AccessQuestion {
  /** Upstream URL of the blob (`<base>/v2/<name>/blobs/<digest>`). */
  url: string
  registry: string
  repository: string
  digest: string
  /** The client's `Authorization`, if any; used for the HEAD and hashed into the key, never kept. */
  authorization: string | undefined
  /** Other client headers forwarded with the HEAD (user agent). */
  headers: HeaderMap
}

export type AccessResult = 'granted' | 'cached' | 'denied' | 'error'

/** Deadline of one shared HEAD (its retries included). */
const HEAD_TIMEOUT_MS = 30_000

export interface AccessCheckerInit {
  upstream: Pick<UpstreamClient, 'request'>
  /** How long a granted check is reused; 0 = check every request. */
  ttlMs: number
  /** Most remembered grants; the oldest go first. */
  maxEntries?: number
  now?: () => number
  onResult?: (result: AccessResult) => void
}

/**
 * Proof of access for private content (ANCHORS.md §6.2). Before bytes that came from this node's
 * cache or from peers are served, the client's own credentials must be able to read the blob
 * upstream: a HEAD of `url` with the client's `Authorization`. A 2xx or 3xx answer (registries
 * redirect blobs to storage only after their auth check) is a grant, remembered for `ttlMs`; anything
 * else — 401, 403, 404, an unreachable upstream — is not, and the caller then passes the request
 * through so the client gets the upstream's own answer (401 + WWW-Authenticate included).
 *
 * The key is (credential, registry, repository, digest). The digest is in it on purpose: a
 * registry answers for a blob per repository (a digest not linked into a repository is 404 there),
 * so a grant for one blob of a readable repository must not open every other cached blob under that
 * name. Credentials are kept only as an HMAC under a key drawn at start (never stored, logged or
 * sent anywhere but this HEAD to the registry they are for). Concurrent checks of one key share one
 * HEAD, so an anonymous-readable blob costs one HEAD per TTL however many clients ask.
 */
export class AccessChecker {
  readonly #init: AccessCheckerInit
  readonly #secret = randomBytes(32)
  readonly #granted = new Map<string, number>()
  readonly #inflight = new Map<string, Promise<boolean>>()
  readonly #now: () => number
  readonly #max: number

  constructor (init: AccessCheckerInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
    this.#max = init.maxEntries ?? 10_000
  }

  /** True when the client may be served this blob from the cache or peers. Never throws. */
  async allowed (q: AccessQuestion, signal: AbortSignal): Promise<boolean> {
    const key = this.#key(q)
    const until = this.#granted.get(key)
    if (until !== undefined && until > this.#now()) {
      this.#init.onResult?.('cached')
      return true
    }
    if (until !== undefined) this.#granted.delete(key)
    let pending = this.#inflight.get(key)
    if (pending === undefined) {
      // Shared by every caller of this key: its own deadline, not the first caller's connection.
      pending = this.#head(q, key, AbortSignal.timeout(HEAD_TIMEOUT_MS)).finally(() => { this.#inflight.delete(key) })
      this.#inflight.set(key, pending)
    }
    return await Promise.race([pending, new Promise<boolean>(resolve => {
      if (signal.aborted) resolve(false)
      signal.addEventListener('abort', () => { resolve(false) }, { once: true })
    })])
  }

  /** Forgets every grant (e.g. tests, or a credential rotation). */
  clear (): void {
    this.#granted.clear()
  }

  async #head (q: AccessQuestion, key: string, signal: AbortSignal): Promise<boolean> {
    const headers: HeaderMap = { ...q.headers, accept: '*/*' }
    delete headers.range
    if (q.authorization !== undefined) headers.authorization = q.authorization
    else delete headers.authorization
    let status: number
    try {
      const res = await this.#init.upstream.request('HEAD', q.url, headers, signal)
      status = res.statusCode
      await res.body.dump()
    } catch {
      this.#init.onResult?.('error')
      return false
    }
    if (status >= 200 && status < 400) {
      if (this.#init.ttlMs > 0) this.#remember(key)
      this.#init.onResult?.('granted')
      return true
    }
    this.#init.onResult?.(status >= 500 || status === 429 ? 'error' : 'denied')
    return false
  }

  #remember (key: string): void {
    this.#granted.delete(key)
    this.#granted.set(key, this.#now() + this.#init.ttlMs)
    while (this.#granted.size > this.#max) {
      const oldest = this.#granted.keys().next().value as string
      this.#granted.delete(oldest)
    }
  }

  #key (q: AccessQuestion): string {
    const credential = createHmac('sha256', this.#secret).update(q.authorization ?? '').digest('base64url')
    return `${credential}\n${q.registry}\n${q.repository}\n${q.digest}`
  }
}
