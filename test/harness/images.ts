import { createHash } from 'node:crypto'
import { imageCacheDir, layerBlob, type LayerBlob } from './layer-blob.js'

/** OCI and Docker media types used by the test images. */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip'
} as const

export const MiB = 1 << 20

/** Layer file sizes of the benchmark image (≈303 MB). */
export const BENCH_LAYER_SIZES: readonly number[] = [1 * MiB, 32 * MiB, 256 * MiB]
/** Small layer sizes for CI tests. */
export const SMALL_LAYER_SIZES: readonly number[] = [1 * MiB, 4 * MiB]

/** A blob to push or expect: the bytes are either on disk (`path`) or in memory (`data`). */
export interface BlobRef {
  digest: string
  size: number
  mediaType: string
  path?: string
  data?: Buffer
}

/** One single-platform image in both manifest flavours. Config and layer bytes are shared by the two. */
export interface TestImage {
  platform: { os: string; architecture: string }
  /** Layers with OCI media types; `diffId` is the sha256 of the uncompressed tar. */
  layers: Array<BlobRef & Pick<LayerBlob, 'diffId' | 'path'>>
  /** Config with the OCI media type. */
  config: BlobRef & { data: Buffer }
  /** OCI image manifest (JSON bytes in `data`). */
  manifest: BlobRef & { data: Buffer }
  /** The same image as Docker v2 schema 2: same config and layer digests, Docker media types. */
  docker: {
    config: BlobRef & { data: Buffer }
    layers: BlobRef[]
    manifest: BlobRef & { data: Buffer }
  }
}

export interface MultiArchImage {
  /** OCI index listing `images` with their platforms. */
  index: BlobRef & { data: Buffer }
  /** linux/amd64 then linux/arm64; they share their first layer and each has its own config. */
  images: TestImage[]
}

export interface TestImageOptions {
  /** Layer file sizes in bytes; default {@link SMALL_LAYER_SIZES}. */
  sizes?: readonly number[]
  /** Different seeds give unrelated layers; default `'damselfly'`. */
  seed?: string
  /** First keystream index of the layers (layer i uses index `firstIndex + i`); default 0. */
  firstIndex?: number
  architecture?: string
  cacheDir?: string
}

/** sha256 digest string of some bytes. */
export function sha256 (data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex')
}

function jsonBlob (value: unknown, mediaType: string): BlobRef & { data: Buffer } {
  const data = Buffer.from(JSON.stringify(value))
  return { digest: sha256(data), size: data.length, mediaType, data }
}

function descriptor (b: BlobRef, mediaType = b.mediaType): { mediaType: string; digest: string; size: number } {
  return { mediaType, digest: b.digest, size: b.size }
}

/** Builds the image from already generated layers. */
function assemble (layers: LayerBlob[], architecture: string, seed: string): TestImage {
  const config = jsonBlob({
    architecture,
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: { 'org.damselfly.test.seed': seed }
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `damselfly test layer ${i}` }))
  }, MediaTypes.ociConfig)
  const ociLayers = layers.map((l) => ({ ...l, mediaType: MediaTypes.ociLayerGzip }))
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: descriptor(config),
    layers: ociLayers.map((l) => descriptor(l))
  }, MediaTypes.ociManifest)
  const dockerConfig = { ...config, mediaType: MediaTypes.dockerConfig }
  const dockerLayers = layers.map((l) => ({ digest: l.digest, size: l.size, path: l.path, mediaType: MediaTypes.dockerLayerGzip }))
  const dockerManifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: descriptor(dockerConfig),
    layers: dockerLayers.map((l) => descriptor(l))
  }, MediaTypes.dockerManifest)
  return {
    platform: { os: 'linux', architecture },
    layers: ociLayers,
    config,
    manifest,
    docker: { config: dockerConfig, layers: dockerLayers, manifest: dockerManifest }
  }
}

/**
 * A deterministic single-platform image: one incompressible layer per entry of `sizes`
 * (generated once into the blob cache, see `layer-blob.ts`), an OCI config and manifest, and the
 * same image as a Docker v2 schema 2 manifest. Same options ⇒ same digests on every run.
 */
export async function buildTestImage (opts: TestImageOptions = {}): Promise<TestImage> {
  const sizes = opts.sizes ?? SMALL_LAYER_SIZES
  const seed = opts.seed ?? 'damselfly'
  const first = opts.firstIndex ?? 0
  const cacheDir = opts.cacheDir ?? imageCacheDir()
  const layers: LayerBlob[] = []
  // Sequential on purpose: the machine has 2 cores and other tests share it.
  for (const [i, size] of sizes.entries()) layers.push(await layerBlob(seed, first + i, size, cacheDir))
  return assemble(layers, opts.architecture ?? 'amd64', seed)
}

/**
 * A multi-arch OCI index: linux/amd64 (layers from `sizes`) and linux/arm64 (the same first layer plus
 * one arm64-only layer of `arm64LayerSize`, default 1 MiB), each with its own config.
 */
export async function buildMultiArchImage (opts: TestImageOptions & { arm64LayerSize?: number } = {}): Promise<MultiArchImage> {
  const seed = opts.seed ?? 'damselfly'
  const cacheDir = opts.cacheDir ?? imageCacheDir()
  const amd64 = await buildTestImage({ ...opts, architecture: 'amd64' })
  const shared = amd64.layers[0]!
  const own = await layerBlob(seed, 1000 + (opts.firstIndex ?? 0), opts.arm64LayerSize ?? MiB, cacheDir)
  const arm64 = assemble([shared, own], 'arm64', seed)
  const images = [amd64, arm64]
  const index = jsonBlob({
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: images.map((img) => ({ ...descriptor(img.manifest), platform: img.platform }))
  }, MediaTypes.ociIndex)
  return { index, images }
}

/** Every distinct blob (config + layers) of the images, by digest. */
export function imageBlobs (...images: TestImage[]): BlobRef[] {
  const out = new Map<string, BlobRef>()
  for (const img of images) {
    out.set(img.config.digest, img.config)
    for (const l of img.layers) out.set(l.digest, l)
  }
  return [...out.values()]
}
