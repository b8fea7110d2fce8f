import { randomBytes } from 'node:crypto'
import { rawHttp, type RawHttpResponse } from './raw-http.js'

/**
 * Harbor's P2P preheat provider calls, replayed as Harbor sends them (PROTOCOLS.md §1): the same
 * paths, headers and JSON bytes (Go's field order, `null` cluster ids, zero timeouts), the same
 * reading of the replies. Only the poll interval is shorter than Harbor's 10 s, to keep tests fast.
 */

/** How Harbor's provider client authenticates (OAUTH: `Authorization: Bearer`, CUSTOM: any header). */
export type HarborAuth = { mode: 'OAUTH', token: string } | { mode: 'CUSTOM', header: string, value: string } | { mode: 'NONE' }

function authHeaders (auth: HarborAuth): Record<string, string> {
  if (auth.mode === 'OAUTH') return { authorization: `Bearer ${auth.token}` }
  if (auth.mode === 'CUSTOM') return { [auth.header]: auth.value }
  return {}
}

/** Harbor's HTTP client: GET with `Accept: application/json`; POST adds `Content-Type: application/json`. */
export async function harborCall (base: string, method: 'GET' | 'POST', path: string, auth: HarborAuth, body?: string): Promise<RawHttpResponse> {
  const headers: Record<string, string> = { 'user-agent': 'Go-http-client/1.1', accept: 'application/json', ...authHeaders(auth) }
  if (body !== undefined) headers['content-type'] = 'application/json'
  return await rawHttp(base, { method, path, headers, ...(body === undefined ? {} : { body }) })
}

/** `POST /oapi/v1/jobs` body of Harbor ≥ 2.12 (`dragonflyCreateJobRequest`, no omitempty). */
export function currentCreateBody (url: string, headers: Record<string, string>, scope = ''): string {
  return `{"type":"preheat","args":{"type":"image","url":${JSON.stringify(url)},"tag":"","filtered_query_params":"","headers":${JSON.stringify(headers)},"scope":${JSON.stringify(scope)},"concurrent_count":0,"timeout":0},"scheduler_cluster_ids":null}`
}

/** `POST /preheats` body of Harbor ≤ 2.11: the PreheatImage itself. */
export function legacyCreateBody (p: { url: string, headers: Record<string, string>, image: string, tag: string, digest: string }): string {
  return `{"type":"image","url":${JSON.stringify(p.url)},"headers":${JSON.stringify(p.headers)},"image":${JSON.stringify(p.image)},"tag":${JSON.stringify(p.tag)},"digest":${JSON.stringify(p.digest)}}`
}

/** `POST /registry/notifications` body of Harbor's Kraken driver: capitalised keys, one push event. */
export function krakenNotificationBody (p: { url: string, repository: string, tag: string, digest: string }): string {
  const id = randomBytes(16).toString('hex')
  const target = `{"MediaType":"application/vnd.docker.distribution.manifest.v2+json","Digest":${JSON.stringify(p.digest)},"Repository":${JSON.stringify(p.repository)},"Url":${JSON.stringify(p.url)},"Tag":${JSON.stringify(p.tag)}}`
  return `{"Events":[{"Id":"${id}","TimeStamp":"${new Date().toISOString()}","Action":"push","Target":${target},"Request":null,"Actor":null}]}`
}

export interface PollOptions {
  intervalMs?: number
  timeoutMs?: number
}

/**
 * Polls `GET /oapi/v1/jobs/{id}` as Harbor's current driver does: PENDING → keep polling, SUCCESS or
 * FAILURE → done, any other state or a non-2xx → the Harbor task fails (thrown here). Returns the
 * final reply.
 */
export async function pollCurrentJob (base: string, id: number, auth: HarborAuth, opts: PollOptions = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  for (;;) {
    const r = await harborCall(base, 'GET', `/oapi/v1/jobs/${id}`, auth)
    if (r.status < 200 || r.status >= 300) throw new Error(`Harbor would fail: GET /oapi/v1/jobs/${id} answered ${r.status} ${r.body.toString('utf8').slice(0, 300)}`)
    const state = r.json?.state
    if (state === 'SUCCESS' || state === 'FAILURE') return r.json
    if (state !== 'PENDING') throw new Error(`Harbor would fail: unknown state ${JSON.stringify(state)}`)
    if (Date.now() > deadline) throw new Error(`job ${id} still PENDING after ${opts.timeoutMs ?? 60_000} ms`)
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 250))
  }
}

/**
 * Polls `GET /preheats/{id}` as Harbor ≤ 2.11 does: WAITING/RUNNING → keep polling, SUCCESS, FAILED
 * (Harbor's FAIL) → done. Returns the final reply.
 */
export async function pollLegacyJob (base: string, id: string, auth: HarborAuth, opts: PollOptions = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  for (;;) {
    const r = await harborCall(base, 'GET', `/preheats/${id}`, auth)
    if (r.status < 200 || r.status >= 300) throw new Error(`Harbor would fail: GET /preheats/${id} answered ${r.status}`)
    const status = r.json?.status ?? r.json?.Status
    if (status === 'SUCCESS' || status === 'FAILED' || status === 'FAIL') return r.json
    if (Date.now() > deadline) throw new Error(`legacy job ${id} still ${String(status)} after ${opts.timeoutMs ?? 60_000} ms`)
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 250))
  }
}
