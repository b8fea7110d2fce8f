import { arch } from 'node:os'
import { dfError, MANIFEST_MEDIA_TYPES, sha256Of, tryParseDigest } from '@damselfly/proto'
import type { ImageReference } from './reference.js'
import type { RegistryClient } from './registry-client.js'

/** A blob an image needs, as its manifest describes it. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { os?: string, architecture?: string, variant?: string }
}

/** A single-platform image: its manifest's bytes and the blobs (config first, then layers). */
export interface ResolvedImage {
  manifest: Descriptor & { bytes: Buffer }
  /** The index the manifest was chosen from, when the reference named one. */
  index?: Descriptor & { bytes: Buffer }
  blobs: Descriptor[]
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
/** Manifests are small; this is containerd's own cap (PROTOCOLS.md §2.2). */
const MAX_MANIFEST_BYTES = 4 * 1048 * 1048

/** `linux/amd64` for this machine, in OCI architecture names. */
export function hostPlatform (): string {
  const a = arch()
  return `linux/${a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a}`
}

/**
 * Fetches an image's manifest from `base` (a registry, or a mirror with `ns`), follows an index to
 * the manifest for `platform` (`os/arch[/variant]`), checks every manifest against its digest, and
 * lists the blobs. Throws DF_ERR_MANIFEST_INVALID or a registry error.
 */
export async function resolveImage (client: RegistryClient, base: string, ref: ImageReference, options: { platform?: string, ns?: string, signal?: AbortSignal } = {}): Promise<ResolvedImage> {
  const top = await fetchManifest(client, base, ref, ref.reference, ref.digest, options)
  if (!INDEX_TYPES.has(top.mediaType)) return { manifest: top, blobs: blobsOf(top) }
  const platform = options.platform ?? hostPlatform()
  const [os, architecture, variant] = platform.split('/')
  const manifests = (top.json as { manifests?: Descriptor[] }).manifests ?? []
  const chosen = manifests.find(m => m.platform?.os === os && m.platform?.architecture === architecture && (variant === undefined || m.platform?.variant === variant))
  if (chosen === undefined) {
    const offered = manifests.map(m => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(p => p !== undefined).join('/'))
    throw dfError('DF_ERR_MANIFEST_INVALID', `${ref.host}/${ref.name}:${ref.reference} has no manifest for ${platform} (offers: ${offered.join(', ') || 'none'})`)
  }
  const manifest = await fetchManifest(client, base, ref, chosen.digest, chosen.digest, options)
  return { index: { mediaType: top.mediaType, digest: top.digest, size: top.size, bytes: top.bytes }, manifest: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, bytes: manifest.bytes, platform: chosen.platform ?? {} }, blobs: blobsOf(manifest) }
}

interface FetchedManifest extends Descriptor {
  bytes: Buffer
  json: unknown
}

async function fetchManifest (client: RegistryClient, base: string, ref: ImageReference, reference: string, expected: string | undefined, options: { ns?: string, signal?: AbortSignal }): Promise<FetchedManifest> {
  const url = `${base}/v2/${ref.name}/manifests/${reference}${options.ns === undefined ? '' : `?ns=${encodeURIComponent(options.ns)}`}`
  const res = await client.request('GET', url, ref.name, { accept: [...MANIFEST_MEDIA_TYPES, '*/*'].join(', ') }, options.signal)
  if (res.status !== 200) {
    const text = (await res.body.text()).slice(0, 300)
    throw dfError('DF_ERR_UPSTREAM_REJECTED', `GET manifest ${ref.name}:${reference} answered ${res.status}: ${text}`, { details: { status: res.status } })
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Buffer).byteLength
    if (size > MAX_MANIFEST_BYTES) throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${ref.name}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  const bytes = Buffer.concat(chunks)
  const digest = sha256Of(bytes)
  if (expected !== undefined && digest !== expected) throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${ref.name}@${expected} hashed to ${digest}`)
  let json: { mediaType?: unknown, schemaVersion?: unknown }
  try { json = JSON.parse(bytes.toString('utf8')) } catch { throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${ref.name}:${reference} is not JSON`) }
  const header = res.headers['content-type']
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : (Array.isArray(header) ? header[0] : header)?.split(';')[0]?.trim() ?? ''
  if (json.schemaVersion !== 2) throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${ref.name}:${reference} is not schema version 2 (${mediaType})`)
  return { mediaType, digest, size: bytes.byteLength, bytes, json }
}

function blobsOf (m: FetchedManifest): Descriptor[] {
  const j = m.json as { config?: Descriptor, layers?: Descriptor[] }
  const all = [j.config, ...(j.layers ?? [])].filter((d): d is Descriptor => d !== undefined)
  const seen = new Set<string>()
  const out: Descriptor[] = []
  for (const d of all) {
    if (tryParseDigest(d.digest) === undefined || !Number.isSafeInteger(d.size) || d.size < 0) throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${m.digest} lists a bad descriptor: ${JSON.stringify(d).slice(0, 200)}`)
    if (seen.has(d.digest)) continue
    seen.add(d.digest)
    out.push({ mediaType: d.mediaType, digest: d.digest, size: d.size })
  }
  if (out.length === 0) throw dfError('DF_ERR_MANIFEST_INVALID', `manifest ${m.digest} (${m.mediaType}) lists no config or layers`)
  return out
}
