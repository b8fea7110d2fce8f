import { hostname, networkInterfaces } from 'node:os'
import type { SeedHost } from './ports.js'

/**
 * How the supernode names itself in Harbor's per-host results: the machine's hostname and the HTTP
 * listen address, or, when that is a wildcard, the first non-internal IPv4 address (what operators
 * would dial), falling back to loopback.
 */
export function seedHost (listenHost: string): SeedHost {
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === ''
  let ip = wildcard ? undefined : listenHost
  if (ip === undefined) {
    for (const addrs of Object.values(networkInterfaces())) {
      const v4 = addrs?.find(a => a.family === 'IPv4' && !a.internal)
      if (v4 !== undefined) { ip = v4.address; break }
    }
  }
  return { hostname: hostname(), ip: ip ?? '127.0.0.1' }
}
