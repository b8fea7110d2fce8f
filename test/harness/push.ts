import { createReadStream } from 'node:fs'
import { request } from 'undici'
import type { BlobRef, MultiArchImage, TestImage } from './images.js'
import { basicAuthHeader, type BasicAuth } from './registry.js'

/** Where to push: a registry base URL (`http://127.0.0.1:PORT`) and optional basic-auth credentials. */
export interface PushTarget {
  url: string
  auth?: BasicAuth
}

/** What was pushed (or found already present). */
export interface PushedDescriptor {
  digest: string
  size: number
  mediaType: string
  /** false when a HEAD showed the blob was already there. */
  uploaded: boolean
}

function headers (target: PushTarget, extra: Record<string, string> = {}): Record<string, string> {
  return target.auth === undefined ? extra : { ...extra, authorization: basicAuthHeader(target.auth) }
}

async function fail (what: string, res: { statusCode: number; body: { text: () => Promise<string> } }): Promise<never> {
  throw new Error(`${what}: HTTP ${res.statusCode} ${(await res.body.text()).slice(0, 500)}`)
}

/**
 * Pushes one blob with the OCI monolithic push flow (POST uploads/ → PUT <location>&digest=, the body
 * streamed from `blob.path` or sent from `blob.data`), skipping it when `HEAD blobs/<digest>` says 200.
 */
export async function pushBlob (target: PushTarget, name: string, blob: BlobRef): Promise<PushedDescriptor> {
  const desc = { digest: blob.digest, size: blob.size, mediaType: blob.mediaType }
  const head = await request(`${target.url}/v2/${name}/blobs/${blob.digest}`, { method: 'HEAD', headers: headers(target) })
  await head.body.dump()
  if (head.statusCode === 200) return { ...desc, uploaded: false }

  const start = await request(`${target.url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: headers(target, { 'content-length': '0' }) })
  if (start.statusCode !== 202) await fail(`start upload of ${blob.digest} to ${name}`, start)
  await start.body.dump()
  const location = start.headers.location
  if (typeof location !== 'string') throw new Error(`start upload of ${blob.digest}: no Location header`)
  const url = new URL(location, target.url)
  url.searchParams.set('digest', blob.digest)

  const body = blob.data ?? (blob.path !== undefined ? createReadStream(blob.path, { highWaterMark: 1 << 20 }) : undefined)
  if (body === undefined) throw new Error(`blob ${blob.digest} has neither path nor data`)
  const put = await request(url, {
    method: 'PUT',
    headers: headers(target, { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) }),
    body
  })
  if (put.statusCode !== 201) await fail(`upload of ${blob.digest} to ${name}`, put)
  await put.body.dump()
  return { ...desc, uploaded: true }
}

/** PUTs a manifest (or index) under `ref` (tag or digest) with the blob's media type as Content-Type. */
export async function pushManifest (target: PushTarget, name: string, ref: string, manifest: BlobRef & { data: Buffer }): Promise<PushedDescriptor> {
  const res = await request(`${target.url}/v2/${name}/manifests/${ref}`, {
    method: 'PUT',
    headers: headers(target, { 'content-type': manifest.mediaType }),
    body: manifest.data
  })
  if (res.statusCode !== 201) await fail(`put manifest ${name}:${ref}`, res)
  await res.body.dump()
  const got = res.headers['docker-content-digest']
  if (got !== manifest.digest) throw new Error(`put manifest ${name}:${ref}: registry says digest ${String(got)}, expected ${manifest.digest}`)
  return { digest: manifest.digest, size: manifest.size, mediaType: manifest.mediaType, uploaded: true }
}

/**
 * Pushes an image's config and layers, then its manifest under `tag`: the OCI manifest
 * (`format: 'oci'`, default) or the Docker v2 schema 2 one (`'docker'`). Blobs go one at a time.
 * Returns the descriptors of everything pushed, manifest last.
 */
export async function pushImage (target: PushTarget, name: string, tag: string, image: TestImage, format: 'oci' | 'docker' = 'oci'): Promise<PushedDescriptor[]> {
  const flavour = format === 'oci' ? image : image.docker
  const out: PushedDescriptor[] = []
  for (const b of [flavour.config, ...flavour.layers]) out.push(await pushBlob(target, name, b))
  out.push(await pushManifest(target, name, tag, flavour.manifest))
  return out
}

/** Pushes every platform image (blobs + manifest by digest), then the index under `tag`. */
export async function pushMultiArch (target: PushTarget, name: string, tag: string, image: MultiArchImage): Promise<PushedDescriptor[]> {
  const out: PushedDescriptor[] = []
  for (const img of image.images) out.push(...await pushImage(target, name, img.manifest.digest, img))
  out.push(await pushManifest(target, name, tag, image.index))
  return out
}
