import { describe, expect, it } from 'vitest'
import { parseDistributionPath } from './distribution-path.js'

const D = `sha256:${'a'.repeat(64)}`

describe('parseDistributionPath', () => {
  const cases: Array<{ name: string, path: string, want: unknown }> = [
    { name: 'base', path: '/v2/', want: { ok: true, route: { kind: 'base' } } },
    { name: 'base without slash', path: '/v2', want: { ok: true, route: { kind: 'base' } } },
    { name: 'manifest by tag', path: '/v2/library/nginx/manifests/1.25', want: { ok: true, route: { kind: 'manifest', name: 'library/nginx', reference: '1.25' } } },
    { name: 'manifest by digest', path: `/v2/a/manifests/${D}`, want: { ok: true, route: { kind: 'manifest', name: 'a', reference: D } } },
    { name: 'blob', path: `/v2/x/y/z/blobs/${D}`, want: { ok: true, route: { kind: 'blob', name: 'x/y/z', digest: D } } },
    { name: 'tags', path: '/v2/library/nginx/tags/list', want: { ok: true, route: { kind: 'tags', name: 'library/nginx' } } },
    { name: 'referrers', path: `/v2/a/referrers/${D}`, want: { ok: true, route: { kind: 'referrers', name: 'a', digest: D } } },
    { name: 'name called blobs', path: `/v2/blobs/blobs/${D}`, want: { ok: true, route: { kind: 'blob', name: 'blobs', digest: D } } },
    { name: 'traversal', path: `/v2/../etc/blobs/${D}`, want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'dot component', path: '/v2/a/./b/manifests/latest', want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'upper-case name', path: '/v2/Library/nginx/manifests/latest', want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'empty component', path: '/v2/a//b/manifests/latest', want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'percent escape', path: '/v2/a%2Fb/manifests/latest', want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'no name', path: `/v2/blobs/${D}`, want: { ok: false, status: 400, code: 'NAME_INVALID' } },
    { name: 'bad blob digest', path: '/v2/a/blobs/sha256:abc', want: { ok: false, status: 400, code: 'DIGEST_INVALID' } },
    { name: 'unknown algorithm', path: `/v2/a/blobs/md5:${'a'.repeat(32)}`, want: { ok: false, status: 400, code: 'DIGEST_INVALID' } },
    { name: 'bad referrers digest', path: '/v2/a/referrers/nope', want: { ok: false, status: 400, code: 'DIGEST_INVALID' } },
    { name: 'invalid manifest reference', path: '/v2/a/manifests/.INVALID_MANIFEST_NAME', want: { ok: false, status: 404, code: 'MANIFEST_UNKNOWN' } },
    { name: 'invalid manifest digest', path: '/v2/a/manifests/sha256:totallywrong', want: { ok: false, status: 404, code: 'MANIFEST_UNKNOWN' } },
    { name: 'uploads', path: '/v2/a/blobs/uploads/', want: { ok: false, status: 405, code: 'UNSUPPORTED' } },
    { name: 'upload session', path: '/v2/a/blobs/uploads/1234', want: { ok: false, status: 405, code: 'UNSUPPORTED' } },
    { name: 'unknown route', path: '/v2/a/unknown', want: { ok: false, status: 404, code: 'UNSUPPORTED' } },
    { name: 'not v2', path: '/foo', want: { ok: false, status: 404, code: 'UNSUPPORTED' } }
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(parseDistributionPath(c.path)).toMatchObject(c.want as object)
    })
  }
  it('refuses names longer than 255', () => {
    expect(parseDistributionPath(`/v2/${'a'.repeat(256)}/manifests/latest`)).toMatchObject({ ok: false, code: 'NAME_INVALID' })
  })
})
