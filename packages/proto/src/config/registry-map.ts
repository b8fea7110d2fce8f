/**
 * Registry hosts and how to reach them. An image's registry host (`docker.io`, `127.0.0.1:5000`) is
 * what `ns=` carries and what operators write; the base URL is where HTTP goes. Docker Hub is the one
 * host whose API lives elsewhere.
 */
export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

/** Canonical registry host: lower-case, Docker Hub aliases folded into `docker.io`. */
export function canonicalRegistryHost (host: string): string {
  const h = host.trim().toLowerCase()
  return DOCKER_HUB_ALIASES.has(h) ? DOCKER_HUB : h
}

/** Parses `HOST=URL` (the `--registry` flag); returns an error message on failure. */
export function parseRegistryEntry (text: string): { host: string, url: string } | string {
  const eq = text.indexOf('=')
  if (eq <= 0) return `expected HOST=URL, got ${JSON.stringify(text)}`
  const host = canonicalRegistryHost(text.slice(0, eq))
  const raw = text.slice(eq + 1).trim()
  let url: URL
  try { url = new URL(raw) } catch { return `not a URL: ${JSON.stringify(raw)}` }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `registry URL must be http or https: ${raw}`
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return `registry URL must carry no credentials, query or fragment: ${raw}`
  if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(host)) return `not a registry host: ${JSON.stringify(host)}`
  return { host, url: url.href.replace(/\/+$/, '') }
}

/** Base URL (no trailing slash) for a registry host, given the configured `HOST=URL` entries. */
export function registryBaseUrl (host: string, entries: ReadonlyMap<string, string>): string {
  const h = canonicalRegistryHost(host)
  const configured = entries.get(h)
  if (configured !== undefined) return configured
  if (h === DOCKER_HUB) return 'https://registry-1.docker.io'
  return `https://${h}`
}
