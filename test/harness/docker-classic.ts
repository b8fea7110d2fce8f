import { createHash } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { MediaTypes } from './images.js'
import { basicAuthHeader, type BasicAuth } from './registry.js'

/** The manifest media types Docker's classic puller lists, one `Accept` header line each. */
export const DOCKER_CLASSIC_ACCEPT: readonly string[] = [
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  'application/vnd.docker.distribution.manifest.v1+prettyjws'
]

export interface ClassicResponse {
  method: string
  path: string
  status: number
  headers: IncomingHttpHeaders
  /** Body size in bytes (0 for HEAD). */
  bytes: number
  /** sha256 of the body, for GETs. */
  digest?: string
}

export interface ClassicPullResult {
  /** Every response in order: ping, HEAD tag, GET manifest(s), GET blobs. */
  responses: ClassicResponse[]
  /** Digest the tag resolved to. */
  manifestDigest: string
  /** The GET blob responses (config first, then layers), each verified against its digest. */
  blobs: ClassicResponse[]
}

export interface ClassicPullOptions {
  /** Basic-auth credentials sent on every request after the ping (Docker only authorises after a ping challenge). */
  auth?: BasicAuth
  /** Platform picked from an index/list; default linux/amd64. */
  platform?: { os: string, architecture: string }
  timeoutMs?: number
}

interface RawResponse { status: number, headers: IncomingHttpHeaders, body: Buffer | undefined, bytes: number, digest: string | undefined }

async function send (url: URL, method: string, headers: Record<string, string | string[]>, keepBody: boolean, timeoutMs: number): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    // node:http writes an array header value as repeated header lines, which is what Docker sends for Accept.
    const req = httpRequest(url, { method, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const hash = createHash('sha256')
      const chunks: Buffer[] = []
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
        hash.update(c)
        if (keepBody) chunks.push(c)
      })
      res.on('error', reject)
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: keepBody ? Buffer.concat(chunks) : undefined,
          bytes,
          digest: method === 'GET' ? 'sha256:' + hash.digest('hex') : undefined
        })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * Replays Docker's classic (graphdriver) pull of `<name>:<tag>` against `baseUrl` (a mirror or a
 * registry), per PROTOCOLS.md §3.1: `GET /v2/`, `HEAD /v2/<name>/manifests/<tag>` with one Accept line
 * per manifest type, `GET` the manifest by digest (and the platform manifest for an index), then `GET`
 * the config and every layer by digest, with no `ns=`. Throws on any non-2xx (other than a 401 ping)
 * or digest mismatch. `name` is the repository path as Docker sends it, e.g. `library/debian`.
 */
export async function dockerClassicPull (baseUrl: string, name: string, tag: string, opts: ClassicPullOptions = {}): Promise<ClassicPullResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const responses: ClassicResponse[] = []
  const auth: Record<string, string> = opts.auth === undefined ? {} : { authorization: basicAuthHeader(opts.auth) }
  const base: Record<string, string> = { 'user-agent': 'docker/20.10.24 go/go1.19.8 (damselfly-test classic replay)' }
  const call = async (method: string, path: string, headers: Record<string, string | string[]>, keepBody: boolean): Promise<RawResponse> => {
    const r = await send(new URL(path, baseUrl), method, { ...base, ...headers }, keepBody, timeoutMs)
    responses.push({ method, path, status: r.status, headers: r.headers, bytes: r.bytes, digest: r.digest })
    return r
  }
  const expectOk = (r: RawResponse, what: string): void => {
    if (r.status < 200 || r.status >= 300) throw new Error(`docker classic replay: ${what} answered ${r.status} (${r.body?.toString('utf8').slice(0, 300) ?? ''})`)
  }

  const ping = await call('GET', '/v2/', {}, true)
  if (ping.status !== 200 && ping.status !== 401) expectOk(ping, 'GET /v2/')

  const head = await call('HEAD', `/v2/${name}/manifests/${tag}`, { ...auth, accept: [...DOCKER_CLASSIC_ACCEPT] }, false)
  expectOk(head, `HEAD manifest ${name}:${tag}`)
  const manifestDigest = head.headers['docker-content-digest']
  if (typeof manifestDigest !== 'string') throw new Error(`HEAD manifest ${name}:${tag}: no Docker-Content-Digest`)

  const getManifest = async (digest: string): Promise<{ mediaType?: string, manifests?: Array<{ digest: string, platform?: { os: string, architecture: string } }>, config?: { digest: string }, layers?: Array<{ digest: string }> }> => {
    const r = await call('GET', `/v2/${name}/manifests/${digest}`, { ...auth, accept: [...DOCKER_CLASSIC_ACCEPT] }, true)
    expectOk(r, `GET manifest ${digest}`)
    if (r.digest !== digest) throw new Error(`manifest ${digest}: body hashes to ${r.digest}`)
    return JSON.parse(r.body!.toString('utf8'))
  }
  let manifest = await getManifest(manifestDigest)
  if (manifest.manifests !== undefined) {
    const pick = manifest.manifests.find((m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture)
    if (pick === undefined) throw new Error(`index ${manifestDigest} has no ${platform.os}/${platform.architecture} manifest`)
    manifest = await getManifest(pick.digest)
  }

  const blobs: ClassicResponse[] = []
  for (const d of [manifest.config!, ...(manifest.layers ?? [])]) {
    const r = await call('GET', `/v2/${name}/blobs/${d.digest}`, auth, false)
    expectOk(r, `GET blob ${d.digest}`)
    if (r.digest !== d.digest) throw new Error(`blob ${d.digest}: body hashes to ${r.digest}`)
    blobs.push(responses.at(-1)!)
  }
  return { responses, manifestDigest, blobs }
}
