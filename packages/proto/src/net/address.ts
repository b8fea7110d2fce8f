/**
 * Which network addresses a registry fetch may reach without an operator naming them. Pure text
 * parsing (proto does no I/O); each binary applies it to the addresses DNS returns at connect time.
 *
 * Why: an upstream URL is built from what callers send (`ns=` at the mirror, `url` in a task or a
 * preheat). Without a rule, anyone who can reach either HTTP port could make Damselfly fetch cloud
 * metadata (169.254.169.254), loopback admin ports or hosts inside the cluster network. Such targets
 * are reachable only through an explicit `--registry HOST=URL` entry.
 */

/** Parses dotted-quad IPv4 (exactly four decimal parts); `undefined` otherwise. */
export function parseIpv4 (text: string): number[] | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out: number[] = []
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out.push(n)
  }
  return out
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail, no zone) into 16 bytes; `undefined` otherwise. */
export function parseIpv6 (text: string): number[] | undefined {
  let s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (s.includes('%')) s = s.slice(0, s.indexOf('%'))
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined
  let tail: number[] = []
  const lastColon = s.lastIndexOf(':')
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(s.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    tail = v4
    s = `${s.slice(0, lastColon + 1)}0:0`
  }
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const groups = (h: string): number[] | undefined => {
    if (h === '') return []
    const out: number[] = []
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const head = groups(halves[0] as string)
  const rest = halves.length === 2 ? groups(halves[1] as string) : []
  if (head === undefined || rest === undefined) return undefined
  const missing = 8 - head.length - rest.length
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return undefined
  const words = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest]
  const bytes = words.flatMap(w => [w >> 8, w & 0xff])
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes
}

/**
 * True for a globally routable unicast address; false for loopback, private (RFC 1918, ULA),
 * link-local (incl. cloud metadata), CGNAT, unspecified, multicast, reserved and documentation
 * ranges, and for anything that is not an IP address at all. IPv4-mapped and NAT64/6to4 forms are
 * judged by the IPv4 address they carry.
 */
export function isPublicAddress (ip: string): boolean {
  const v4 = parseIpv4(ip)
  if (v4 !== undefined) return isPublicIpv4(v4)
  const v6 = parseIpv6(ip)
  if (v6 === undefined) return false
  const zeroTo = (n: number): boolean => v6.slice(0, n).every(b => b === 0)
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64).
  if (zeroTo(10) && v6[10] === 0xff && v6[11] === 0xff) return isPublicIpv4(v6.slice(12))
  if (zeroTo(12)) return false // ::, ::1 and the deprecated IPv4-compatible form
  if (v6[0] === 0x00 && v6[1] === 0x64 && v6[2] === 0xff && v6[3] === 0x9b) return isPublicIpv4(v6.slice(12))
  if (v6[0] === 0x20 && v6[1] === 0x02) return isPublicIpv4(v6.slice(2, 6)) // 6to4
  const first = v6[0] as number
  if ((first & 0xfe) === 0xfc) return false // fc00::/7 unique local
  if (first === 0xfe && ((v6[1] as number) & 0xc0) === 0x80) return false // fe80::/10 link-local
  if (first === 0xfe && ((v6[1] as number) & 0xc0) === 0xc0) return false // fec0::/10 site-local
  if (first === 0xff) return false // multicast
  if (first === 0x20 && v6[1] === 0x01 && v6[2] === 0x0d && v6[3] === 0xb8) return false // documentation
  return (first & 0xe0) === 0x20 // 2000::/3 is the only global unicast space
}

function isPublicIpv4 (b: number[]): boolean {
  const [a, c] = [b[0] as number, b[1] as number]
  if (a === 0 || a === 10 || a === 127) return false
  if (a === 100 && c >= 64 && c <= 127) return false // CGNAT
  if (a === 169 && c === 254) return false // link-local, cloud metadata
  if (a === 172 && c >= 16 && c <= 31) return false
  if (a === 192 && c === 168) return false
  if (a === 192 && c === 0 && (b[2] === 0 || b[2] === 2)) return false // IETF, TEST-NET-1
  if (a === 198 && (c === 18 || c === 19)) return false // benchmarking
  if (a === 198 && c === 51 && b[2] === 100) return false
  if (a === 203 && c === 0 && b[2] === 113) return false
  return a < 224 // multicast, reserved and broadcast above
}

/** True for an IPv4 or IPv6 literal (brackets allowed). */
export function isIpLiteral (host: string): boolean {
  return parseIpv4(host) !== undefined || parseIpv6(host) !== undefined
}

/**
 * Whether a URL hostname (as `new URL()` normalises it: IPv6 in brackets, IPv4 in dotted quads even
 * when written in decimal or hex) may be fetched without an explicit registry entry: public IP
 * literals, and DNS names other than `localhost` — whose addresses the binaries check again at
 * connect time, so a name that resolves to a private address is refused there.
 */
export function isPublicHostname (hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '')
  if (isIpLiteral(h)) return isPublicAddress(h)
  if (h === '' || h === 'localhost' || h.endsWith('.localhost')) return false
  return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(h)
}

/** A registry host as `ns=` may carry it: a DNS name or IP literal, with an optional port. */
export const REGISTRY_HOST_RE = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/
