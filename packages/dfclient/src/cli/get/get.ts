import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { dfError, parseDigest, registryBaseUrl } from '@damselfly/proto'
import type { DownloadOpener } from '../../mirror/blob-handler.js'
import { resolveImage, type Descriptor } from '../oci/manifest.js'
import { formatImageReference, parseBlobUrl, parseImageReference } from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'
import { fetchBlobToFile, type FetchedBlob } from './fetch-blob.js'
import type { Progress } from './progress.js'

export interface GetDeps {
  openDownload: DownloadOpener
  registry: RegistryClient
  /** Configured `--registry HOST=URL` entries. */
  registries: ReadonlyMap<string, string>
  progress: Progress
  /** One line per verified blob, as it completes. */
  report: (line: string) => void
}

export interface GetResult {
  kind: 'blob' | 'image'
  blobs: FetchedBlob[]
  /** For an image: the manifest written (its digest). */
  manifest?: string
}

/** Blobs of an image downloaded at once (each is itself fetched piece-parallel). */
const BLOB_CONCURRENCY = 3

/**
 * `dfclient get SOURCE -O OUT`. A blob URL becomes the file OUT. An image reference becomes the
 * directory OUT as an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`): the manifest
 * (for `platform` when the reference names an index) plus its config and layers, so `skopeo copy
 * oci:OUT …` or `umoci` can use it. Manifests come from the registry directly (they are small and
 * mutable); every blob comes through the P2P network and is verified before it is kept.
 */
export async function runGet (source: string, out: string, options: { platform?: string | undefined }, deps: GetDeps, signal: AbortSignal): Promise<GetResult> {
  const blobUrl = parseBlobUrl(source)
  if (blobUrl !== undefined) {
    const authorization = await authorize(deps.registry, blobUrl.url, blobUrl.name, signal)
    const fetched = await fetchBlobToFile(deps.openDownload, { digest: blobUrl.digest, url: blobUrl.url, authorization }, out, n => { deps.progress.add(n) }, signal)
    deps.report(`${fetched.digest} ${fetched.size} bytes verified -> ${out}`)
    return { kind: 'blob', blobs: [fetched] }
  }
  if (/^[a-z]+:\/\//i.test(source)) throw dfError('DF_ERR_SOURCE_INVALID', `not a blob URL (http(s)://host/v2/<name>/blobs/<digest>): ${source}`)

  const ref = parseImageReference(source)
  const base = registryBaseUrl(ref.host, deps.registries)
  const image = await resolveImage(deps.registry, base, ref, { ...(options.platform === undefined ? {} : { platform: options.platform }), signal })
  const blobDir = join(out, 'blobs', 'sha256')
  await mkdir(blobDir, { recursive: true })
  for (const b of image.blobs) deps.progress.grow(b.size)
  const authorization = deps.registry.authorizationFor(base, ref.name)
  const fetched: FetchedBlob[] = []
  const queue = [...image.blobs]
  const worker = async (): Promise<void> => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
      const path = join(blobDir, parseDigest(b.digest).hex)
      const got = await fetchBlobToFile(deps.openDownload, { digest: b.digest, url: `${base}/v2/${ref.name}/blobs/${b.digest}`, authorization, size: b.size }, path, n => { deps.progress.add(n) }, signal)
      fetched.push(got)
      deps.report(`${got.digest} ${got.size} bytes verified (${b.mediaType})`)
    }
  }
  await Promise.all(Array.from({ length: Math.min(BLOB_CONCURRENCY, queue.length) }, worker))
  await writeLayout(out, image.manifest, ref.tag)
  deps.report(`${formatImageReference(ref)} -> ${out} (OCI layout, manifest ${image.manifest.digest})`)
  return { kind: 'image', blobs: fetched, manifest: image.manifest.digest }
}

/**
 * The Authorization the registry wants for `repository`, found with a HEAD of the blob (no body):
 * the supernode needs it for its back-to-source fetch, and a token registry only says which token
 * in a 401 challenge.
 */
async function authorize (registry: RegistryClient, url: string, repository: string, signal: AbortSignal): Promise<string | undefined> {
  const res = await registry.request('HEAD', url, repository, {}, signal)
  await res.body.dump()
  if (res.status >= 400) throw dfError('DF_ERR_UPSTREAM_REJECTED', `HEAD ${url} answered ${res.status}`, { details: { status: res.status } })
  return registry.authorizationFor(url, repository)
}

/** Writes the manifest blob, `oci-layout` and `index.json` (last, so a layout is complete or absent). */
async function writeLayout (out: string, manifest: Descriptor & { bytes: Buffer }, tag: string | undefined): Promise<void> {
  const path = join(out, 'blobs', 'sha256', parseDigest(manifest.digest).hex)
  const existing = await stat(path).catch(() => undefined)
  if (existing?.size !== manifest.size) await writeFile(path, manifest.bytes)
  await writeFile(join(out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const entry = {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.size,
    ...(manifest.platform === undefined ? {} : { platform: manifest.platform }),
    ...(tag === undefined ? {} : { annotations: { 'org.opencontainers.image.ref.name': tag } })
  }
  await writeFile(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }, null, 2) + '\n')
}
