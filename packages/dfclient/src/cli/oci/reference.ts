import { DOCKER_HUB, canonicalRegistryHost, dfError, isValidName, isValidTag, tryParseDigest } from '@damselfly/proto'

/** An image reference, normalised the way Docker and containerd do (`nginx` → `docker.io/library/nginx:latest`). */
export interface ImageReference {
  /** Registry host as `ns=` carries it (`docker.io`, `127.0.0.1:5000`). */
  host: string
  /** Repository name (`library/nginx`). */
  name: string
  tag?: string
  digest?: string
  /** What goes into `/v2/<name>/manifests/<reference>`: the digest if given, else the tag. */
  reference: string
}

/**
 * Parses `[host[:port]/]name[:tag][@digest]`. The first path component is a registry host when it
 * contains a `.` or a `:` or is `localhost` (Docker's rule); otherwise the image is on Docker Hub, where
 * one-component names live under `library/`. Throws DF_ERR_SOURCE_INVALID.
 */
export function parseImageReference (text: string): ImageReference {
  const bad = (why: string): never => { throw dfError('DF_ERR_SOURCE_INVALID', `not an image reference (${why}): ${JSON.stringify(text)}`) }
  let rest = text.trim()
  if (rest === '' || /\s/.test(rest) || rest.includes('://')) bad('expected [host/]name[:tag][@digest]')
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = tryParseDigest(rest.slice(at + 1))?.value ?? bad('bad digest')
    rest = rest.slice(0, at)
  }
  let tag: string | undefined
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!isValidTag(tag)) bad('bad tag')
  }
  const parts = rest.split('/')
  let host = DOCKER_HUB
  const first = parts[0] as string
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = canonicalRegistryHost(first)
    parts.shift()
  }
  if (host === DOCKER_HUB && parts.length === 1) parts.unshift('library')
  const name = parts.join('/')
  if (!isValidName(name)) bad('bad repository name')
  if (digest === undefined && tag === undefined) tag = 'latest'
  return { host, name, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }), reference: digest ?? (tag as string) }
}

/** `host/name:tag@digest` for messages. */
export function formatImageReference (r: ImageReference): string {
  return `${r.host}/${r.name}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`
}

/** A blob URL `http(s)://host/v2/<name>/blobs/<digest>`, split; `undefined` when `text` is not one. */
export function parseBlobUrl (text: string): { url: string, base: string, name: string, digest: string } | undefined {
  let u: URL
  try { u = new URL(text) } catch { return undefined }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
  const m = /^(.*)\/v2\/(.+)\/blobs\/([^/]+)$/.exec(u.pathname)
  if (m === null) return undefined
  const digest = tryParseDigest(decodeURIComponent(m[3] as string))
  const name = m[2] as string
  if (digest === undefined || !isValidName(name)) return undefined
  return { url: `${u.origin}${u.pathname}`, base: `${u.origin}${m[1] as string}`, name, digest: digest.value }
}
