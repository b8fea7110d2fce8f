import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'

export interface RawHttpRequest {
  method?: string
  /** Sent exactly as given: no `..` or percent-escape normalisation (unlike `fetch`/`new URL`). */
  path: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** default 30 s */
  timeoutMs?: number
}

export interface RawHttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * One HTTP/1.1 request to `baseUrl` (`http://host:port`) with the request target sent verbatim, for
 * bad-input tests (`/v2/a/../b`, `%2e%2e`). Resolves with the full response even when the server
 * answers before reading the whole request body (e.g. 413) and then resets the connection.
 */
export async function rawHttp (baseUrl: string, r: RawHttpRequest): Promise<RawHttpResponse> {
  const base = new URL(baseUrl)
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body
  const headers: Record<string, string> = { ...(r.headers ?? {}) }
  if (body !== undefined) headers['content-length'] = String(body.length)
  return await new Promise((resolve, reject) => {
    let settled = false
    const done = (err: Error | undefined, res?: RawHttpResponse): void => {
      if (settled) return
      settled = true
      if (err !== undefined) reject(err)
      else resolve(res!)
    }
    const req = httpRequest({
      host: base.hostname,
      port: base.port,
      method: r.method ?? 'GET',
      path: r.path,
      headers,
      agent: false,
      signal: AbortSignal.timeout(r.timeoutMs ?? 30_000)
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('error', (err) => { done(err) })
      res.on('end', () => {
        const buf = Buffer.concat(chunks)
        let json: unknown
        try { json = buf.length === 0 ? undefined : JSON.parse(buf.toString('utf8')) } catch { json = undefined }
        done(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: buf, json })
      })
    })
    // A server may answer (413) and close before it read the body: the write then fails with
    // EPIPE/ECONNRESET, but the response is what the test wants, so only fail if none arrives.
    req.on('error', (err) => { setTimeout(() => { done(err) }, 200) })
    if (body !== undefined) req.write(body)
    req.end()
  })
}
