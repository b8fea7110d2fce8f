import { Agent, request, type Dispatcher } from 'undici'
import { dfError, isDfError, parseContentRange, retryDelayMs, RETRY_STATUSES, sleep, type RegistryTargetPolicy } from '@damselfly/proto'
import { policyAgent } from './registry-access.js'

/** An upstream response whose status is 200 and whose size is known. */
export interface UpstreamBody {
  size: number
  body: AsyncIterable<Uint8Array>
  /** Releases the connection when the caller stops reading early. */
  cancel: () => void
}

/** The port the seed uses to reach upstream registries (tests may inject a fake). */
export type UpstreamFetcher = (url: string, init: { authorization?: string | undefined, signal: AbortSignal }) => Promise<UpstreamBody>

export interface UpstreamFetcherOptions {
  /** Replaces the Agent built from the options below (tests). */
  dispatcher?: Dispatcher
  /** Where fetches may go (see registry-access.ts); absent = anywhere (tests). */
  policy?: RegistryTargetPolicy
  /** Wait for response headers, and longest pause inside a body, before a retry. */
  timeoutMs?: number
  /** Attempts per request, the first included. */
  attempts?: number
  /** First retry delay; doubles per attempt (with jitter). */
  retryDelayMs?: number
}

const MAX_REDIRECTS = 5
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
/** Times a body that broke off (reset, stall, early end) is resumed with a Range request. */
export const MAX_BODY_RESUMES = 3

/**
 * GETs a blob with undici: follows up to 5 redirects (registries redirect blobs to object storage),
 * forwarding `authorization` only while the host stays the same. Every hop obeys the registry policy
 * (DF_ERR_REGISTRY_NOT_ALLOWED: loopback, private and link-local targets only when configured).
 * Transient failures are retried with exponential backoff: network errors and 408/429/5xx answers
 * up to `attempts` times, and a body that breaks off mid-way (reset, a pause longer than the
 * timeout, an early end) is resumed from the next byte with `Range` up to 3 times, so the caller sees
 * one unbroken body or an error — never a short body. Maps failures to catalogue errors: non-200 →
 * DF_ERR_UPSTREAM_REJECTED (`details.status`, `details.wwwAuthenticate`), no Content-Length →
 * DF_ERR_UPSTREAM_SIZE_UNKNOWN, timeouts → DF_ERR_UPSTREAM_TIMEOUT, other network failures →
 * DF_ERR_UPSTREAM_UNREACHABLE.
 */
export function createUpstreamFetcher (options: UpstreamFetcherOptions | Dispatcher = {}): UpstreamFetcher {
  const o: UpstreamFetcherOptions = isDispatcher(options) ? { dispatcher: options } : options
  const timeout = o.timeoutMs ?? 30_000
  const policy = o.policy
  const dispatcher = o.dispatcher ?? (policy === undefined ? new Agent({ headersTimeout: timeout, bodyTimeout: timeout }) : policyAgent(policy, timeout))
  const attempts = Math.max(1, o.attempts ?? 4)
  const baseDelay = o.retryDelayMs ?? 500

  /** One GET (redirects followed), retried while the failure is transient. */
  async function open (url: string, range: string | undefined, init: { authorization?: string | undefined, signal: AbortSignal }): Promise<{ res: Dispatcher.ResponseData, at: URL }> {
    for (let attempt = 1; ; attempt++) {
      let opened: { res: Dispatcher.ResponseData, at: URL }
      try {
        opened = await follow(url, range, init)
      } catch (err) {
        if (init.signal.aborted || (isDfError(err) && err.code === 'DF_ERR_REGISTRY_NOT_ALLOWED') || attempt >= attempts) throw err
        await sleep(retryDelayMs(attempt, baseDelay) ?? baseDelay, init.signal)
        continue
      }
      const { res } = opened
      if (!RETRY_STATUSES.has(res.statusCode) || attempt >= attempts) return opened
      const wait = retryDelayMs(attempt, baseDelay, res.headers['retry-after'])
      if (wait === undefined) return opened
      discard(res.body)
      await sleep(wait, init.signal)
    }
  }

  async function follow (url: string, range: string | undefined, init: { authorization?: string | undefined, signal: AbortSignal }): Promise<{ res: Dispatcher.ResponseData, at: URL }> {
    let current = new URL(url)
    const originHost = current.host
    for (let hop = 0; ; hop++) {
      policy?.check(current)
      const headers: Record<string, string> = { accept: '*/*' }
      if (range !== undefined) headers.range = range
      if (init.authorization !== undefined && current.host === originHost) headers.authorization = init.authorization
      let res: Dispatcher.ResponseData
      try {
        res = await request(current, { method: 'GET', headers, signal: init.signal, dispatcher })
      } catch (err) {
        throw mapNetworkError(err, current)
      }
      if (!REDIRECT_STATUSES.has(res.statusCode)) return { res, at: current }
      discard(res.body)
      const location = header(res, 'location')
      if (location === undefined || hop >= MAX_REDIRECTS) {
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream ${current.host} redirected ${location === undefined ? 'without a Location' : `more than ${MAX_REDIRECTS} times`}`, { details: { status: res.statusCode } })
      }
      current = new URL(location, current)
    }
  }

  return async (url, init) => {
    const { res, at } = await open(url, undefined, init)
    if (res.statusCode !== 200) {
      discard(res.body)
      const wwwAuthenticate = header(res, 'www-authenticate')
      throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream ${at.host} answered ${res.statusCode}`, {
        details: wwwAuthenticate === undefined ? { status: res.statusCode } : { status: res.statusCode, wwwAuthenticate }
      })
    }
    const lengthText = header(res, 'content-length')
    const size = lengthText === undefined || !/^\d+$/.test(lengthText) ? NaN : Number(lengthText)
    if (!Number.isSafeInteger(size)) {
      discard(res.body)
      throw dfError('DF_ERR_UPSTREAM_SIZE_UNKNOWN', `upstream ${at.host} sent no usable Content-Length`)
    }
    let current = res.body
    const body = (async function * () {
      let offset = 0
      for (let resumes = 0; ; resumes++) {
        let failure: Error
        try {
          for await (const chunk of current) {
            offset += (chunk as Uint8Array).byteLength
            yield chunk as Uint8Array
          }
          // Too many bytes is the caller's to judge (it knows the size); too few is a broken body.
          if (offset >= size) return
          failure = dfError('DF_ERR_UPSTREAM_UNREACHABLE', `upstream ${at.host} ended the body at byte ${offset} of ${size}`)
        } catch (err) {
          if (init.signal.aborted) throw err
          failure = mapNetworkError(err, at)
        }
        if (resumes >= MAX_BODY_RESUMES) throw failure
        await sleep(baseDelay * 2 ** resumes, init.signal)
        // From the original URL: a redirect target may be a short-lived signed URL.
        const next = await open(url, `bytes=${offset}-${size - 1}`, init).catch(() => { throw failure })
        const span = parseContentRange(header(next.res, 'content-range'))
        if (next.res.statusCode !== 206 || span?.start !== offset || (span.total !== undefined && span.total !== size)) {
          discard(next.res.body)
          throw failure
        }
        current = next.res.body
      }
    })()
    return { size, body, cancel: () => { discard(current) } }
  }
}

function isDispatcher (o: unknown): o is Dispatcher {
  return typeof (o as { dispatch?: unknown }).dispatch === 'function'
}

function header (res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Drops a body we will not read; undici reports the destroy as an 'error' that nobody needs. */
function discard (body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => { /* expected: we destroyed it on purpose */ })
  body.destroy()
}

function mapNetworkError (err: unknown, url: URL): Error {
  if (isDfError(err)) return err
  const e = err as { name?: string, code?: string, message?: string }
  if (e.name === 'AbortError') return err as Error
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return dfError('DF_ERR_UPSTREAM_TIMEOUT', `upstream ${url.host} timed out (${e.code})`, { cause: err })
  }
  return dfError('DF_ERR_UPSTREAM_UNREACHABLE', `upstream ${url.host} unreachable: ${e.message ?? String(err)}`, { cause: err })
}
