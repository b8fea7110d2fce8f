import { request, type Dispatcher } from 'undici'
import { dfError, isDfError } from '@damselfly/proto'

/** An upstream response whose status is 200 and whose size is known. */
export interface UpstreamBody {
  size: number
  body: AsyncIterable<Uint8Array>
  /** Releases the connection when the caller stops reading early. */
  cancel: () => void
}

/** The port the seed uses to reach upstream registries (tests may inject a fake). */
export type UpstreamFetcher = (url: string, init: { authorization?: string | undefined, signal: AbortSignal }) => Promise<UpstreamBody>

const MAX_REDIRECTS = 5
const HEADERS_TIMEOUT_MS = 30_000
const BODY_IDLE_TIMEOUT_MS = 60_000
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/**
 * GETs a blob with undici: follows up to 5 redirects (registries redirect blobs to object storage),
 * forwarding `authorization` only while the host stays the same, with a 30 s headers timeout and a
 * 60 s body idle timeout. Maps failures to catalogue errors: non-200 → DF_ERR_UPSTREAM_REJECTED
 * (`details.status`, `details.wwwAuthenticate`), no Content-Length → DF_ERR_UPSTREAM_SIZE_UNKNOWN,
 * timeouts → DF_ERR_UPSTREAM_TIMEOUT, anything else on the network → DF_ERR_UPSTREAM_UNREACHABLE.
 */
export function createUpstreamFetcher (dispatcher?: Dispatcher): UpstreamFetcher {
  return async (url, init) => {
    let current = new URL(url)
    const originHost = current.host
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { accept: '*/*' }
      if (init.authorization !== undefined && current.host === originHost) headers.authorization = init.authorization
      let res: Dispatcher.ResponseData
      try {
        res = await request(current, {
          method: 'GET',
          headers,
          signal: init.signal,
          headersTimeout: HEADERS_TIMEOUT_MS,
          bodyTimeout: BODY_IDLE_TIMEOUT_MS,
          ...(dispatcher === undefined ? {} : { dispatcher })
        })
      } catch (err) {
        throw mapNetworkError(err, current)
      }
      const header = (name: string): string | undefined => {
        const v = res.headers[name]
        return Array.isArray(v) ? v[0] : v
      }
      if (REDIRECT_STATUSES.has(res.statusCode)) {
        discard(res.body)
        const location = header('location')
        if (location === undefined || hop >= MAX_REDIRECTS) {
          throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream ${current.host} redirected ${location === undefined ? 'without a Location' : `more than ${MAX_REDIRECTS} times`}`, { details: { status: res.statusCode } })
        }
        current = new URL(location, current)
        continue
      }
      if (res.statusCode !== 200) {
        discard(res.body)
        const wwwAuthenticate = header('www-authenticate')
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream ${current.host} answered ${res.statusCode}`, {
          details: wwwAuthenticate === undefined ? { status: res.statusCode } : { status: res.statusCode, wwwAuthenticate }
        })
      }
      const lengthText = header('content-length')
      const size = lengthText === undefined || !/^\d+$/.test(lengthText) ? NaN : Number(lengthText)
      if (!Number.isSafeInteger(size)) {
        discard(res.body)
        throw dfError('DF_ERR_UPSTREAM_SIZE_UNKNOWN', `upstream ${current.host} sent no usable Content-Length`)
      }
      const body = res.body
      return {
        size,
        body: (async function * () {
          try {
            for await (const chunk of body) yield chunk as Uint8Array
          } catch (err) {
            throw mapNetworkError(err, current)
          }
        })(),
        cancel: () => { discard(body) }
      }
    }
  }
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
