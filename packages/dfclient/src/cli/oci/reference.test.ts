import { describe, expect, it } from 'vitest'
import { parseBlobUrl, parseImageReference } from './reference.js'
import { parseChallenge } from './registry-client.js'

const D = `sha256:${'a'.repeat(64)}`

describe('image references', () => {
  it.each([
    ['nginx', { host: 'docker.io', name: 'library/nginx', tag: 'latest', reference: 'latest' }],
    ['nginx:1.25', { host: 'docker.io', name: 'library/nginx', tag: '1.25', reference: '1.25' }],
    ['bitnami/redis', { host: 'docker.io', name: 'bitnami/redis', tag: 'latest', reference: 'latest' }],
    ['index.docker.io/library/busybox:1', { host: 'docker.io', name: 'library/busybox', tag: '1', reference: '1' }],
    ['127.0.0.1:5000/test/app:v1', { host: '127.0.0.1:5000', name: 'test/app', tag: 'v1', reference: 'v1' }],
    ['localhost/app', { host: 'localhost', name: 'app', tag: 'latest', reference: 'latest' }],
    [`ghcr.io/o/r@${D}`, { host: 'ghcr.io', name: 'o/r', digest: D, reference: D }],
    [`reg.example:443/o/r:t@${D}`, { host: 'reg.example:443', name: 'o/r', tag: 't', digest: D, reference: D }]
  ])('%s', (text, want) => { expect(parseImageReference(text)).toEqual(want) })

  it.each(['', 'UPPER/case', 'a b', 'http://x/y', 'x@sha256:12', 'r:bad tag'])('rejects %j', (text) => {
    expect(() => parseImageReference(text)).toThrow(expect.objectContaining({ code: 'DF_ERR_SOURCE_INVALID' }))
  })

  it('splits blob URLs', () => {
    expect(parseBlobUrl(`http://127.0.0.1:5000/v2/test/app/blobs/${D}`)).toEqual({ url: `http://127.0.0.1:5000/v2/test/app/blobs/${D}`, base: 'http://127.0.0.1:5000', name: 'test/app', digest: D })
    expect(parseBlobUrl(`https://r.example/prefix/v2/a/blobs/${D}?x=1`)?.base).toBe('https://r.example/prefix')
    expect(parseBlobUrl('https://r.example/v2/a/manifests/latest')).toBeUndefined()
    expect(parseBlobUrl('nginx')).toBeUndefined()
  })

  it('parses auth challenges', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' }
    })
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } })
    expect(parseChallenge('Negotiate')).toBeUndefined()
  })
})
