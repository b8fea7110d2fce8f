import { dfError, isValidName, isValidTag, tryParseDigest } from '@damselfly/proto'
import type { PlatformFilter } from './config.js'

/** A manifest URL taken apart: `<base>/v2/<repository>/manifests/<reference>`. */
export interface ManifestLocation {
  /** `scheme://host[:port][/prefix]`, no trailing slash. */
  base: string
  /** `host[:port]`, what registry credentials are keyed by. */
  host: string
  repository: string
  /** A tag or a digest. */
  reference: string
}

// Dragonfly's manager parses the same shape (`^(.*)://(.*)/v2/(.*)/manifests/(.*)`); a path prefix
// before /v2/ is kept in `base` so registries served under a sub-path work too.
const MANIFEST_URL_RE = /^(https?:\/\/[^/?#]+(?:\/[^?#]*?)?)\/v2\/(.+)\/manifests\/([^/?#]+)$/

/** Parses a preheat URL; throws DF_ERR_PREHEAT_URL_INVALID saying what is wrong. */
export function parseManifestUrl (url: string): ManifestLocation {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw dfError('DF_ERR_PREHEAT_URL_INVALID', `not a URL: ${JSON.stringify(url.slice(0, 200))}`)
  }
  const m = (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.username === '' && parsed.password === ''
    ? MANIFEST_URL_RE.exec(`${parsed.protocol}//${parsed.host}${parsed.pathname}`)
    : null
  if (m === null) throw dfError('DF_ERR_PREHEAT_URL_INVALID', `expected http(s)://HOST/v2/NAME/manifests/REFERENCE without credentials, got ${JSON.stringify(url.slice(0, 200))}`)
  const [, base, repository, reference] = m as unknown as [string, string, string, string]
  if (!isValidName(repository)) throw dfError('DF_ERR_PREHEAT_URL_INVALID', `not a repository name: ${JSON.stringify(repository)}`)
  if (!isValidTag(reference) && tryParseDigest(reference) === undefined) throw dfError('DF_ERR_PREHEAT_URL_INVALID', `not a tag or digest: ${JSON.stringify(reference)}`)
  return { base, host: parsed.host, repository, reference }
}

export const manifestUrlOf = (loc: ManifestLocation, reference: string): string => `${loc.base}/v2/${loc.repository}/manifests/${reference}`
export const blobUrlOf = (loc: ManifestLocation, digest: string): string => `${loc.base}/v2/${loc.repository}/blobs/${digest}`

/** An entry of an image index. */
export interface IndexEntry {
  digest: string
  mediaType: string
  /** `os/arch[/variant]`, or undefined when the entry names no platform. */
  platform: string | undefined
}

export interface BlobDescriptor {
  digest: string
  size: number
}

export type ParsedManifest =
  | { kind: 'index', entries: IndexEntry[] }
  | { kind: 'image', blobs: BlobDescriptor[] }

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
const IMAGE_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'])

interface Descriptor { mediaType?: unknown, digest?: unknown, size?: unknown, urls?: unknown, platform?: { os?: unknown, architecture?: unknown, variant?: unknown } }

function descriptorDigest (d: Descriptor, where: string): string {
  if (typeof d.digest !== 'string' || tryParseDigest(d.digest) === undefined) {
    throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `${where}: missing or unsupported digest ${JSON.stringify(d.digest)}`)
  }
  return d.digest
}

/**
 * Parses an image manifest or index. The type comes from the body's `mediaType`, else the response's
 * Content-Type, else the shape (`manifests` vs `layers`). Foreign layers (descriptors with `urls`,
 * e.g. Windows base layers) are skipped: the registry does not hold them.
 */
export function parseManifest (body: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: { mediaType?: unknown, schemaVersion?: unknown, manifests?: unknown, config?: unknown, layers?: unknown }
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8'))
  } catch {
    throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', 'manifest is not JSON')
  }
  if (doc === null || typeof doc !== 'object') throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', 'manifest is not a JSON object')
  const type = typeof doc.mediaType === 'string' ? doc.mediaType : contentType?.split(';')[0]?.trim()
  const isIndex = type !== undefined && INDEX_TYPES.has(type) ? true : type !== undefined && IMAGE_TYPES.has(type) ? false : Array.isArray(doc.manifests)
  if (doc.schemaVersion !== 2) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `unsupported manifest (schemaVersion ${JSON.stringify(doc.schemaVersion)}, type ${type ?? 'unknown'}): only OCI and Docker schema 2`)
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', 'index has no manifests list')
    const entries = (doc.manifests as Descriptor[]).map((d, i) => {
      const p = d.platform
      const platform = p !== undefined && typeof p.os === 'string' && typeof p.architecture === 'string'
        ? [p.os, p.architecture, ...(typeof p.variant === 'string' && p.variant !== '' ? [p.variant] : [])].join('/').toLowerCase()
        : undefined
      return { digest: descriptorDigest(d, `manifests[${i}]`), mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', platform }
    })
    return { kind: 'index', entries }
  }
  if (doc.config === null || typeof doc.config !== 'object' || !Array.isArray(doc.layers)) {
    throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `unsupported manifest (type ${type ?? 'unknown'}): no config and layers`)
  }
  const blobs: BlobDescriptor[] = []
  for (const [i, d] of [doc.config as Descriptor, ...(doc.layers as Descriptor[])].entries()) {
    if (Array.isArray(d.urls) && d.urls.length > 0) continue
    const where = i === 0 ? 'config' : `layers[${i - 1}]`
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `${where}: bad size ${JSON.stringify(d.size)}`)
    blobs.push({ digest: descriptorDigest(d, where), size: d.size })
  }
  return { kind: 'image', blobs }
}

/**
 * The index entries to preheat. `all` takes every entry with a real platform (attestation manifests,
 * `unknown/unknown`, are not images anyone runs). A filter `os/arch` also matches any variant of it
 * (`linux/arm64` takes `linux/arm64/v8`). Throws DF_ERR_PREHEAT_NO_PLATFORM listing what exists.
 */
export function selectEntries (entries: readonly IndexEntry[], filter: PlatformFilter): IndexEntry[] {
  const runnable = entries.filter(e => e.platform !== undefined && !e.platform.startsWith('unknown/'))
  const picked = filter === 'all'
    ? runnable
    : runnable.filter(e => filter.some(f => e.platform === f || (f.split('/').length === 2 && e.platform?.startsWith(`${f}/`) === true)))
  if (picked.length === 0) {
    const available = [...new Set(runnable.map(e => e.platform))].join(', ') || 'none'
    throw dfError('DF_ERR_PREHEAT_NO_PLATFORM', `the index has no manifest for ${filter === 'all' ? 'any platform' : filter.join(', ')} (available: ${available})`)
  }
  return picked
}
