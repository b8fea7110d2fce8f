import { dfError } from '../errors.js'
import { isPublicAddress, isPublicHostname } from './address.js'

/** One resolved address, as `dns.lookup(host, { all: true })` returns it. */
export interface ResolvedAddress { address: string, family: number }

/** The resolver the policy wraps: `dns.lookup` with `{ all: true }` (injected; proto does no I/O). */
export type Resolve = (hostname: string, callback: (err: Error | null, addresses: ResolvedAddress[]) => void) => void

/** A `lookup` as `net.connect` (and so undici's `connect` option) calls it. */
export type ConnectLookup = (hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: string | ResolvedAddress[], family?: number) => void) => void

/**
 * Where registry fetches may go (docs/errors.md DF_ERR_REGISTRY_NOT_ALLOWED): any origin of a
 * configured `--registry HOST=URL` entry, whatever its address; otherwise only public addresses.
 * Checked twice: `check(url)` before a request (IP literals, `localhost`), and `lookup` when a
 * connection is made, on the addresses DNS actually returned — so a public-looking name that
 * resolves to 169.254.169.254 or 127.0.0.1 is refused too, and a rebinding DNS answer cannot slip in
 * between a check and the connect. Redirect targets go through the same two checks.
 */
export interface RegistryTargetPolicy {
  /** Throws DF_ERR_REGISTRY_NOT_ALLOWED when `url` may not be fetched (before any I/O). */
  check: (url: string | URL) => void
  /** True when `url` has the origin of a configured registry. */
  isConfigured: (url: string | URL) => boolean
  /** For undici's `connect: { lookup }`: drops non-public addresses of names not configured. */
  lookup: ConnectLookup
}

/** Builds the policy from the configured registry base URLs. */
export function registryTargetPolicy (configuredUrls: Iterable<string>, resolve: Resolve): RegistryTargetPolicy {
  const origins = new Set<string>()
  const hostnames = new Set<string>()
  for (const u of configuredUrls) {
    const url = new URL(u)
    origins.add(url.origin)
    hostnames.add(url.hostname.toLowerCase())
  }
  const isConfigured = (url: string | URL): boolean => origins.has((typeof url === 'string' ? new URL(url) : url).origin)
  return {
    isConfigured,
    check: (url) => {
      const u = typeof url === 'string' ? new URL(url) : url
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw notAllowed(u.host, 'only http and https registries')
      if (isConfigured(u)) return
      if (!isPublicHostname(u.hostname)) throw notAllowed(u.host, 'a loopback, private or link-local address')
    },
    lookup: (hostname, options, callback) => {
      resolve(hostname, (err, addresses) => {
        if (err !== null) { callback(err, []); return }
        const allowed = hostnames.has(hostname.toLowerCase()) ? addresses : addresses.filter(a => isPublicAddress(a.address))
        if (allowed.length === 0) {
          callback(notAllowed(hostname, `resolves only to non-public addresses (${addresses.map(a => a.address).join(', ')})`), [])
          return
        }
        if (options.all === true) callback(null, allowed)
        else callback(null, (allowed[0] as ResolvedAddress).address, (allowed[0] as ResolvedAddress).family)
      })
    }
  }
}

function notAllowed (host: string, why: string): Error {
  return dfError('DF_ERR_REGISTRY_NOT_ALLOWED', `registry ${host} is not allowed: ${why}; name it with --registry HOST=URL to fetch from it`)
}
