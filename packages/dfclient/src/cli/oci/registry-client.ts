import { request, type Dispatcher } from 'undici'
import { dfError } from '@damselfly/proto'

export interface Credentials {
  username: string
  password: string
}

export interface RegistryResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
}

/**
 * A pull-only registry HTTP client for the command-line tools, talking either to a registry or to a
 * mirror (which relays the registry's challenges). It answers one `401` per request the way
 * containerd does (PROTOCOLS.md §2.4): a `Basic` challenge with the given credentials, a `Bearer`
 * challenge by fetching a token from the realm (anonymously, or with the credentials) for the
 * challenge's scope, then retries once. The `Authorization` that worked is kept per repository and
 * offered first next time, and is what a P2P task registration forwards to the supernode.
 */
export class RegistryClient {
  readonly #creds: Credentials | undefined
  readonly #timeoutMs: number
  /** `origin|repository` → Authorization header that last worked. */
  readonly #auth = new Map<string, string>()

  constructor (init: { credentials?: Credentials | undefined, timeoutMs?: number } = {}) {
    this.#creds = init.credentials
    this.#timeoutMs = init.timeoutMs ?? 30_000
  }

  /** The Authorization header that worked for `repository` at `url`'s origin, if any. */
  authorizationFor (url: string, repository: string): string | undefined {
    return this.#auth.get(`${new URL(url).origin}|${repository}`)
  }

  /** GET or HEAD with challenge handling. The caller consumes or dumps the body. */
  async request (method: 'GET' | 'HEAD', url: string, repository: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RegistryResponse> {
    const key = `${new URL(url).origin}|${repository}`
    let authorization = this.#auth.get(key)
    let res = await this.#send(method, url, authorization === undefined ? headers : { ...headers, authorization }, signal)
    if (res.status !== 401) return res
    const challenge = res.headers['www-authenticate']
    await res.body.dump()
    authorization = await this.#answer(Array.isArray(challenge) ? challenge[0] : challenge, signal)
    if (authorization === undefined) return await this.#send(method, url, headers, signal)
    res = await this.#send(method, url, { ...headers, authorization }, signal)
    if (res.status !== 401) this.#auth.set(key, authorization)
    return res
  }

  /** Parses a `WWW-Authenticate` header and produces the Authorization that answers it. */
  async #answer (challenge: string | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    if (challenge === undefined) return undefined
    const parsed = parseChallenge(challenge)
    if (parsed === undefined) return undefined
    const basic = this.#creds === undefined ? undefined : `Basic ${Buffer.from(`${this.#creds.username}:${this.#creds.password}`).toString('base64')}`
    if (parsed.scheme === 'basic') return basic
    const realm = parsed.params.realm
    if (realm === undefined) return undefined
    const tokenUrl = new URL(realm)
    if (parsed.params.service !== undefined) tokenUrl.searchParams.set('service', parsed.params.service)
    if (parsed.params.scope !== undefined) tokenUrl.searchParams.set('scope', parsed.params.scope)
    const res = await this.#send('GET', tokenUrl.href, basic === undefined ? {} : { authorization: basic }, signal)
    if (res.status !== 200) {
      await res.body.dump()
      throw dfError('DF_ERR_UPSTREAM_REJECTED', `token endpoint ${tokenUrl.origin}${tokenUrl.pathname} answered ${res.status}`, { details: { status: res.status } })
    }
    const body = await res.body.json() as { token?: unknown, access_token?: unknown }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined
    if (token === undefined) throw dfError('DF_ERR_UPSTREAM_REJECTED', `token endpoint ${tokenUrl.origin} returned no token`)
    return `Bearer ${token}`
  }

  async #send (method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<RegistryResponse> {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    try {
      // No redirects followed: manifests are not redirected, and for a blob a 3xx already proves access.
      const res = await request(url, { method, headers, signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) })
      return { status: res.statusCode, headers: res.headers, body: res.body }
    } catch (err) {
      if (signal?.aborted === true) throw err
      const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)
      throw dfError(timeout.aborted ? 'DF_ERR_UPSTREAM_TIMEOUT' : 'DF_ERR_UPSTREAM_UNREACHABLE', `${method} ${redactUrl(url)}: ${cause}`, { cause: err })
    }
  }
}

/** `Bearer realm="…",service="…",scope="…"` → scheme and parameters. */
export function parseChallenge (header: string): { scheme: 'basic' | 'bearer', params: Record<string, string> } | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header)
  if (m === null) return undefined
  const scheme = (m[1] as string).toLowerCase()
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined
  const params: Record<string, string> = {}
  for (const p of (m[2] as string).matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[(p[1] as string).toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return { scheme, params }
}

/** A URL without its query (which can carry tokens) for messages. */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
