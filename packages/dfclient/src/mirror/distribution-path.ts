import { isValidName, isValidTag, tryParseDigest, type OciErrorCode } from '@damselfly/proto'

/** A parsed OCI distribution pull route. */
export type DistributionRoute =
  | { kind: 'base' }
  | { kind: 'manifest', name: string, reference: string }
  | { kind: 'blob', name: string, digest: string }
  | { kind: 'tags', name: string }
  | { kind: 'referrers', name: string, digest: string }

export interface RouteError { status: number, code: OciErrorCode, message: string }

export type ParsedPath = { ok: true, route: DistributionRoute } | ({ ok: false } & RouteError)

const fail = (status: number, code: OciErrorCode, message: string): ParsedPath => ({ ok: false, status, code, message })

/**
 * Parses a request path (without query) against the OCI pull routes. The name is checked with the
 * spec grammar, so `..`, empty components and percent-escapes never reach an upstream URL. Following
 * the conformance suite, an invalid manifest reference is 404 MANIFEST_UNKNOWN, not 400.
 */
export function parseDistributionPath (path: string): ParsedPath {
  if (path === '/v2' || path === '/v2/') return { ok: true, route: { kind: 'base' } }
  if (!path.startsWith('/v2/')) return fail(404, 'UNSUPPORTED', `no such route: ${path.slice(0, 200)}`)
  const segs = path.slice(4).split('/')
  const n = segs.length
  const last = segs[n - 1] as string
  const prev = n >= 2 ? segs[n - 2] as string : ''

  let kind: DistributionRoute['kind']
  let nameSegs: string[]
  if (n >= 3 && segs[n - 3] === 'blobs' && prev === 'uploads') {
    return fail(405, 'UNSUPPORTED', 'this mirror is read-only: uploads are not supported')
  } else if (n >= 2 && prev === 'blobs' && last === 'uploads') {
    return fail(405, 'UNSUPPORTED', 'this mirror is read-only: uploads are not supported')
  } else if (n >= 2 && prev === 'manifests') {
    kind = 'manifest'; nameSegs = segs.slice(0, -2)
  } else if (n >= 2 && prev === 'blobs') {
    kind = 'blob'; nameSegs = segs.slice(0, -2)
  } else if (n >= 2 && prev === 'referrers') {
    kind = 'referrers'; nameSegs = segs.slice(0, -2)
  } else if (n >= 2 && prev === 'tags' && last === 'list') {
    kind = 'tags'; nameSegs = segs.slice(0, -2)
  } else {
    return fail(404, 'UNSUPPORTED', `no such route: ${path.slice(0, 200)}`)
  }

  const name = nameSegs.join('/')
  if (nameSegs.length === 0 || !isValidName(name)) return fail(400, 'NAME_INVALID', `invalid repository name ${JSON.stringify(name.slice(0, 300))}`)

  switch (kind) {
    case 'manifest': {
      const ok = last.includes(':') ? tryParseDigest(last) !== undefined : isValidTag(last)
      if (!ok) return fail(404, 'MANIFEST_UNKNOWN', `invalid manifest reference ${JSON.stringify(last.slice(0, 200))}`)
      return { ok: true, route: { kind, name, reference: last } }
    }
    case 'blob':
    case 'referrers': {
      if (tryParseDigest(last) === undefined) return fail(400, 'DIGEST_INVALID', `invalid digest ${JSON.stringify(last.slice(0, 200))}`)
      return { ok: true, route: { kind, name, digest: last } }
    }
    default:
      return { ok: true, route: { kind: 'tags', name } }
  }
}
