import type { IncomingMessage, ServerResponse } from 'node:http'
import { lookup as dnsLookup } from 'node:dns'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Agent, request, type Dispatcher } from 'undici'
import { dfError, isDfError, registryTargetPolicy, type RegistryTargetPolicy } from '@damselfly/proto'
import { resumableBody, retryDelayMs, RETRY_STATUSES, sleep } from './upstream-retry.js'

/** Request headers forwarded to the upstream on pass-through (everything else stays here). */
const FORWARDED_REQUEST = ['authorization', 'accept', 'range', 'user-agent'] as const

/** Response headers relayed unchanged to the client (plus any `oci-*`). */
const RELAYED_RESPONSE = new Set([
  'www-authenticate', 'docker-content-digest', 'content-type', 'content-length', 'content-range',
  'content-encoding', 'accept-ranges', 'docker-distribution-api-version', 'location', 'link', 'etag',
  'retry-after', 'last-modified', 'cache-control', 'warning'
])

export type HeaderMap = Record<string, string | string[]>

/** The client's headers to forward, keeping repeated `Accept` lines as separate lines (Docker sends one per type). */
export function forwardedHeaders (req: IncomingMessage, overrides: Record<string, string | undefined> = {}): HeaderMap {
  const out: HeaderMap = {}
  for (const name of FORWARDED_REQUEST) {
    const values = req.headersDistinct[name]
    if (values !== undefined && values.length > 0) out[name] = values.length === 1 ? values[0] as string : values
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

/** Copies the relayable upstream headers onto the client response. */
export function relayHeaders (headers: Dispatcher.ResponseData['headers'], res: ServerResponse): void {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (RELAYED_RESPONSE.has(lower) || lower.startsWith('oci-')) res.setHeader(name, value)
  }
}

/** The upstream URL for a mirror request: same path, same query minus `ns`. */
export function upstreamUrl (base: string, path: string, search: string): string {
  const params = new URLSearchParams(search)
  params.delete('ns')
  const q = params.toString()
  return `${base}${path}${q === '' ? '' : `?${q}`}`
}

export interface UpstreamClientOptions {
  connectTimeoutMs?: number
  /** Wait for response headers, and longest pause between body chunks (a stalled upstream). */
  timeoutMs?: number
  /** Attempts per request, the first included (5xx, 429, 408 and network errors are retried). */
  attempts?: number
  /** First retry delay; doubles per attempt (with jitter). */
  retryDelayMs?: number
  /** Configured registry base URLs: only these may be private, loopback or link-local targets. */
  registries?: Iterable<string>
}

/**
 * undici-based upstream access. Redirects are never followed (pass-through relays them; containerd and
 * Docker follow them and drop Authorization across hosts themselves). Targets obey the registry
 * policy (DF_ERR_REGISTRY_NOT_ALLOWED). Transient failures — network errors, 408, 429, 5xx — are
 * retried with exponential backoff up to `attempts`; the last answer is returned (or its error
 * thrown as DF_ERR_UPSTREAM_UNREACHABLE / DF_ERR_UPSTREAM_TIMEOUT).
 */
export class UpstreamClient {
  readonly #agent: Agent
  readonly #policy: RegistryTargetPolicy | undefined
  readonly #attempts: number
  readonly #retryDelayMs: number

  constructor (options: UpstreamClientOptions = {}) {
    const timeout = options.timeoutMs ?? 30_000
    this.#policy = options.registries === undefined ? undefined : registryTargetPolicy(options.registries, (host, cb) => { dnsLookup(host, { all: true }, cb) })
    this.#agent = new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 10_000, ...(this.#policy === undefined ? {} : { lookup: this.#policy.lookup }) },
      headersTimeout: timeout,
      bodyTimeout: timeout
    })
    this.#attempts = Math.max(1, options.attempts ?? 3)
    this.#retryDelayMs = options.retryDelayMs ?? 250
  }

  /** Throws DF_ERR_REGISTRY_NOT_ALLOWED when `url` is not a target this mirror may fetch. */
  check (url: string): void {
    this.#policy?.check(url)
  }

  async request (method: 'GET' | 'HEAD', url: string, headers: HeaderMap, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    this.check(url)
    for (let attempt = 1; ; attempt++) {
      let res: Dispatcher.ResponseData
      try {
        res = await request(url, { method, headers, signal, dispatcher: this.#agent })
      } catch (err) {
        if (signal.aborted) throw err
        const mapped = mapNetworkError(err, url)
        if (mapped.code === 'DF_ERR_REGISTRY_NOT_ALLOWED' || attempt >= this.#attempts) throw mapped
        await sleep(retryDelayMs(attempt, this.#retryDelayMs) ?? this.#retryDelayMs, signal)
        continue
      }
      if (!RETRY_STATUSES.has(res.statusCode) || attempt >= this.#attempts) return res
      const wait = retryDelayMs(attempt, this.#retryDelayMs, res.headers['retry-after'])
      if (wait === undefined) return res // asks for a longer pause than a pull should sit through: relayed
      await res.body.dump()
      await sleep(wait, signal)
    }
  }

  /**
   * Relays one upstream response: status, relayable headers, body streamed with backpressure.
   * `transform` may wrap the body (byte counting, digest verification). With `resume`, a 200/206 body
   * that breaks off (reset, stall) is continued with `Range` requests from where it stopped, so a
   * transient failure mid-blob costs a retry, not the pull. A 5xx or 429 whose body is not JSON
   * becomes an OCI error body (same status). Returns the status.
   */
  async relay (upstream: Dispatcher.ResponseData, res: ServerResponse, signal: AbortSignal, transform?: (body: AsyncIterable<Uint8Array>, status: number) => AsyncIterable<Uint8Array>, resume?: { url: string, headers: HeaderMap }): Promise<number> {
    res.statusCode = upstream.statusCode
    relayHeaders(upstream.headers, res)
    let body: AsyncIterable<Uint8Array> = upstream.body
    if (upstream.statusCode >= 500 || upstream.statusCode === 429) {
      const type = String(upstream.headers['content-type'] ?? '')
      if (!/json/i.test(type)) {
        await upstream.body.dump()
        const text = JSON.stringify({ errors: [{ code: upstream.statusCode === 429 ? 'TOOMANYREQUESTS' : 'UNSUPPORTED', message: `upstream registry answered ${upstream.statusCode}` }] })
        res.setHeader('Content-Type', 'application/json')
        res.setHeader('Content-Length', Buffer.byteLength(text))
        res.removeHeader('Content-Encoding')
        body = (async function * () { yield Buffer.from(text) })()
      }
    } else if (resume !== undefined && (upstream.statusCode === 200 || upstream.statusCode === 206)) {
      body = resumableBody(upstream, { signal, delayMs: this.#retryDelayMs, reopen: async (range) => await this.request('GET', resume.url, { ...resume.headers, range }, signal) })
    }
    const source = transform === undefined ? Readable.from(body, { objectMode: false }) : Readable.from(transform(body, upstream.statusCode), { objectMode: false })
    await pipeline(source, res, { signal })
    return upstream.statusCode
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }
}

export function mapNetworkError (err: unknown, url: string): Error & { code: string } {
  if (isDfError(err)) return err
  const code = (err as { code?: string }).code
  const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
  return dfError(timeout ? 'DF_ERR_UPSTREAM_TIMEOUT' : 'DF_ERR_UPSTREAM_UNREACHABLE', `upstream ${new URL(url).host}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
