import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Agent, request, type Dispatcher } from 'undici'
import { dfError } from '@damselfly/proto'

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

/**
 * undici-based upstream access. Redirects are never followed (pass-through relays them; containerd and
 * Docker follow them and drop Authorization across hosts themselves). Errors reaching the upstream
 * become DF_ERR_UPSTREAM_UNREACHABLE / DF_ERR_UPSTREAM_TIMEOUT.
 */
export class UpstreamClient {
  readonly #agent: Agent

  constructor (options: { connectTimeoutMs?: number, headersTimeoutMs?: number, bodyTimeoutMs?: number } = {}) {
    this.#agent = new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.bodyTimeoutMs ?? 120_000
    })
  }

  async request (method: 'GET' | 'HEAD', url: string, headers: HeaderMap, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method, headers, signal, dispatcher: this.#agent })
    } catch (err) {
      if (signal.aborted) throw err
      const code = (err as { code?: string }).code
      const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
      throw dfError(timeout ? 'DF_ERR_UPSTREAM_TIMEOUT' : 'DF_ERR_UPSTREAM_UNREACHABLE', `upstream ${new URL(url).host}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }

  /**
   * Relays one upstream response: status, relayable headers, body streamed with backpressure.
   * `transform` may wrap the body (byte counting, digest verification). Returns the status.
   */
  async relay (upstream: Dispatcher.ResponseData, res: ServerResponse, signal: AbortSignal, transform?: (body: AsyncIterable<Uint8Array>, status: number) => AsyncIterable<Uint8Array>): Promise<number> {
    res.statusCode = upstream.statusCode
    relayHeaders(upstream.headers, res)
    const body: AsyncIterable<Uint8Array> = upstream.body
    const source = transform === undefined ? upstream.body : Readable.from(transform(body, upstream.statusCode), { objectMode: false })
    await pipeline(source, res, { signal })
    return upstream.statusCode
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }
}
