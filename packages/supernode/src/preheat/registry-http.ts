import { request, type Dispatcher } from 'undici'
import { dfError, isDfError, MANIFEST_MEDIA_TYPES } from '@damselfly/proto'
import { MAX_MANIFEST_BYTES } from './job-runner.js'
import type { ManifestFetcher } from './ports.js'
import type { TokenFetcher } from './registry-auth.js'

const HEADERS_TIMEOUT_MS = 30_000
const BODY_TIMEOUT_MS = 30_000
/** How much of an error body is read to quote the registry's own words. */
const ERROR_BODY_BYTES = 4096
const MAX_TOKEN_BYTES = 64 * 1024

type Body = Dispatcher.ResponseData['body']

/** Reads at most `limit` bytes of a body, then drops the rest. */
async function readCapped (body: Body, limit: number): Promise<{ bytes: Buffer, truncated: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const c = chunk as Buffer
    if (size + c.byteLength > limit) {
      chunks.push(c.subarray(0, limit - size))
      body.on('error', () => { /* expected: destroyed on purpose */ })
      body.destroy()
      return { bytes: Buffer.concat(chunks), truncated: true }
    }
    chunks.push(c)
    size += c.byteLength
  }
  return { bytes: Buffer.concat(chunks), truncated: false }
}

/** `MANIFEST_UNKNOWN: manifest unknown` from an OCI error body, else the body's start. */
function registryError (text: string): string {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: unknown, message?: unknown }> }
    const errors = (doc.errors ?? []).filter(e => typeof e.code === 'string').map(e => `${String(e.code)}: ${typeof e.message === 'string' ? e.message : ''}`)
    if (errors.length > 0) return errors.join('; ')
  } catch { /* not JSON: quoted as text below */ }
  return text.trim().slice(0, 300) || '(empty body)'
}

function networkError (err: unknown, what: string): Error {
  if (isDfError(err)) return err
  const e = err as { name?: string, code?: string, message?: string }
  if (e.name === 'AbortError') return err as Error
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') return dfError('DF_ERR_UPSTREAM_TIMEOUT', `${what} timed out (${e.code})`, { cause: err })
  return dfError('DF_ERR_UPSTREAM_UNREACHABLE', `${what}: ${e.message ?? String(err)}`, { cause: err })
}

/**
 * GETs a manifest with undici: the caller's headers plus `Accept` for every OCI and Docker manifest
 * type, 30 s timeouts, no redirects (registries serve manifests themselves). A non-200 becomes
 * DF_ERR_UPSTREAM_REJECTED quoting the registry's error (`MANIFEST_UNKNOWN: manifest unknown`).
 */
export function createManifestFetcher (dispatcher?: Dispatcher): ManifestFetcher {
  return async (url, headers, signal) => {
    const host = new URL(url).host
    const what = `GET manifest from ${host}`
    let res: Dispatcher.ResponseData
    try {
      res = await request(url, {
        method: 'GET',
        headers: { ...headers, accept: MANIFEST_MEDIA_TYPES.join(', ') },
        signal,
        headersTimeout: HEADERS_TIMEOUT_MS,
        bodyTimeout: BODY_TIMEOUT_MS,
        ...(dispatcher === undefined ? {} : { dispatcher })
      })
    } catch (err) {
      throw networkError(err, what)
    }
    const header = (name: string): string | undefined => {
      const v = res.headers[name]
      return Array.isArray(v) ? v[0] : v
    }
    try {
      if (res.statusCode !== 200) {
        const { bytes } = await readCapped(res.body, ERROR_BODY_BYTES)
        const www = header('www-authenticate')
        const path = new URL(url).pathname
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `registry ${host} answered ${res.statusCode} to GET ${path}: ${registryError(bytes.toString('utf8'))}`, {
          details: www === undefined ? { status: res.statusCode } : { status: res.statusCode, wwwAuthenticate: www }
        })
      }
      const { bytes, truncated } = await readCapped(res.body, MAX_MANIFEST_BYTES + 1)
      if (truncated) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `manifest from ${host} is larger than ${MAX_MANIFEST_BYTES} bytes`)
      return { body: bytes, contentType: header('content-type') }
    } catch (err) {
      throw networkError(err, what)
    }
  }
}

/**
 * The distribution token flow (`GET realm?service=&scope=`, Basic credentials when we have them):
 * returns `token` (or `access_token`) and `expires_in`.
 */
export function createTokenFetcher (dispatcher?: Dispatcher): TokenFetcher {
  return async (req, signal) => {
    const url = new URL(req.realm)
    if (req.service !== undefined) url.searchParams.set('service', req.service)
    url.searchParams.set('scope', req.scope)
    const what = `token request to ${url.host}`
    let res: Dispatcher.ResponseData
    try {
      res = await request(url, {
        method: 'GET',
        headers: { accept: 'application/json', ...(req.authorization === undefined ? {} : { authorization: req.authorization }) },
        signal,
        headersTimeout: HEADERS_TIMEOUT_MS,
        bodyTimeout: BODY_TIMEOUT_MS,
        ...(dispatcher === undefined ? {} : { dispatcher })
      })
    } catch (err) {
      throw networkError(err, what)
    }
    try {
      const { bytes } = await readCapped(res.body, MAX_TOKEN_BYTES)
      if (res.statusCode !== 200) {
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `${what} answered ${res.statusCode}: ${registryError(bytes.toString('utf8'))}`, { details: { status: res.statusCode } })
      }
      const doc = JSON.parse(bytes.toString('utf8')) as { token?: unknown, access_token?: unknown, expires_in?: unknown }
      const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token
      if (typeof token !== 'string' || token === '') throw dfError('DF_ERR_UPSTREAM_REJECTED', `${what} returned no token`, { details: { status: res.statusCode } })
      return { token, expiresInS: typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : undefined }
    } catch (err) {
      if (err instanceof SyntaxError) throw dfError('DF_ERR_UPSTREAM_REJECTED', `${what} returned invalid JSON`, { details: { status: res.statusCode } })
      throw networkError(err, what)
    }
  }
}
