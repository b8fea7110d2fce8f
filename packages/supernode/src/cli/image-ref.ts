import { DOCKER_HUB, canonicalRegistryHost, isValidName, isValidTag, tryParseDigest } from '@damselfly/proto'

/** An image reference as `docker pull` reads it. */
export interface ImageRef {
  /** Canonical registry host (`docker.io`, `127.0.0.1:5000`). */
  host: string
  repository: string
  /** Tag or digest. */
  reference: string
}

/**
 * Parses `[host[:port]/]name[:tag][@digest]` with Docker's rules: the first component is a host when
 * it has a `.` or `:` or is `localhost`; Docker Hub names get `library/`; no tag means `latest`.
 * Returns an error message on failure.
 */
export function parseImageRef (text: string): ImageRef | string {
  let rest = text.trim()
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (tryParseDigest(digest) === undefined) return `not a digest: ${JSON.stringify(digest)}`
  }
  const slash = rest.indexOf('/')
  const first = slash < 0 ? '' : rest.slice(0, slash)
  const hasHost = first.includes('.') || first.includes(':') || first === 'localhost'
  const host = hasHost ? canonicalRegistryHost(first) : DOCKER_HUB
  let path = hasHost ? rest.slice(slash + 1) : rest
  let tag: string | undefined
  const colon = path.lastIndexOf(':')
  if (colon >= 0) {
    tag = path.slice(colon + 1)
    path = path.slice(0, colon)
    if (!isValidTag(tag)) return `not a tag: ${JSON.stringify(tag)}`
  }
  const repository = host === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path
  if (!isValidName(repository)) return `not a repository name: ${JSON.stringify(path)}`
  return { host, repository, reference: digest ?? tag ?? 'latest' }
}
