import { describe, expect, it } from 'vitest'
import { blobUrlOf, manifestUrlOf, parseManifest, parseManifestUrl, selectEntries, type IndexEntry } from './manifest.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const C = `sha256:${'c'.repeat(64)}`
const bytes = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v))
const codeOf = (fn: () => unknown): string | undefined => {
  try { fn() } catch (err) { return (err as { code?: string }).code }
  return undefined
}

describe('manifest URLs', () => {
  it('takes Harbor\'s URL apart and builds blob and manifest URLs on the same base', () => {
    const loc = parseManifestUrl('https://harbor.example.com/v2/library/nginx/manifests/1.25')
    expect(loc).toEqual({ base: 'https://harbor.example.com', host: 'harbor.example.com', repository: 'library/nginx', reference: '1.25' })
    expect(blobUrlOf(loc, A)).toBe(`https://harbor.example.com/v2/library/nginx/blobs/${A}`)
    expect(manifestUrlOf(loc, B)).toBe(`https://harbor.example.com/v2/library/nginx/manifests/${B}`)
  })
  it('keeps a port and a path prefix, accepts a digest reference', () => {
    expect(parseManifestUrl(`http://127.0.0.1:5000/prefix/v2/a/b/c/manifests/${A}`)).toEqual({ base: 'http://127.0.0.1:5000/prefix', host: '127.0.0.1:5000', repository: 'a/b/c', reference: A })
  })
  const bad = ['not a url', 'ftp://h/v2/a/manifests/t', 'https://u:p@h/v2/a/manifests/t', 'https://h/v2/a/blobs/t', 'https://h/v2/A!/manifests/t', 'https://h/v2/a/manifests/-bad', 'https://h/v2/a/manifests/']
  for (const url of bad) it(`refuses ${url}`, () => { expect(codeOf(() => parseManifestUrl(url))).toBe('DF_ERR_PREHEAT_URL_INVALID') })
})

describe('parseManifest', () => {
  it('an OCI image manifest: config then layers, foreign layers skipped', () => {
    const m = parseManifest(bytes({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: A, size: 10 },
      layers: [{ digest: B, size: 20 }, { digest: C, size: 30, urls: ['https://mcr.example/layer'] }]
    }), 'application/vnd.oci.image.manifest.v1+json')
    expect(m).toEqual({ kind: 'image', blobs: [{ digest: A, size: 10 }, { digest: B, size: 20 }] })
  })
  it('a Docker manifest list with no mediaType in the body is recognised by Content-Type', () => {
    const m = parseManifest(bytes({ schemaVersion: 2, manifests: [{ digest: A, mediaType: 'x', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }] }), 'application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8')
    expect(m).toEqual({ kind: 'index', entries: [{ digest: A, mediaType: 'x', platform: 'linux/arm64/v8' }] })
  })
  const invalid: Array<[string, unknown]> = [
    ['schema 1', { schemaVersion: 1, fsLayers: [] }],
    ['no layers', { schemaVersion: 2, config: { digest: A, size: 1 } }],
    ['bad digest', { schemaVersion: 2, config: { digest: 'md5:x', size: 1 }, layers: [] }],
    ['bad size', { schemaVersion: 2, config: { digest: A, size: -1 }, layers: [] }]
  ]
  for (const [name, doc] of invalid) it(`refuses ${name}`, () => { expect(codeOf(() => parseManifest(bytes(doc), undefined))).toBe('DF_ERR_PREHEAT_MANIFEST_INVALID') })
  it('refuses non-JSON', () => { expect(codeOf(() => parseManifest(Buffer.from('<html>'), 'text/html'))).toBe('DF_ERR_PREHEAT_MANIFEST_INVALID') })
})

describe('selectEntries', () => {
  const entries: IndexEntry[] = [
    { digest: A, mediaType: 'm', platform: 'linux/amd64' },
    { digest: B, mediaType: 'm', platform: 'linux/arm64/v8' },
    { digest: C, mediaType: 'm', platform: 'unknown/unknown' }
  ]
  const cases: Array<{ filter: 'all' | string[], want: string[] }> = [
    { filter: ['linux/amd64'], want: [A] },
    { filter: ['linux/arm64'], want: [B] },
    { filter: ['linux/arm64/v8', 'linux/amd64'], want: [A, B] },
    { filter: 'all', want: [A, B] }
  ]
  for (const c of cases) {
    it(`${JSON.stringify(c.filter)} picks ${c.want.length}`, () => { expect(selectEntries(entries, c.filter).map(e => e.digest)).toEqual(c.want) })
  }
  it('no match lists what the index has', () => {
    let message = ''
    try { selectEntries(entries, ['windows/amd64']) } catch (err) { message = (err as Error).message; expect((err as { code: string }).code).toBe('DF_ERR_PREHEAT_NO_PLATFORM') }
    expect(message).toContain('available: linux/amd64, linux/arm64/v8')
  })
})
