/**
 * What `--supernode` names: a supernode base URL (`http://10.0.0.5:8002`), or a DNS name standing for
 * every address it resolves to (`dns+http://supernode-headless.damselfly.svc:8002`, a Kubernetes
 * headless Service: one A/AAAA record per ready supernode pod).
 */
export type SupernodeSpec =
  | { kind: 'url', url: string }
  | { kind: 'dns', scheme: 'http' | 'https', host: string, port: number, path: string }

/** Parses one `--supernode` value; a string is the reason it is not one. */
export function parseSupernodeSpec (text: string): SupernodeSpec | string {
  let u: URL
  try { u = new URL(text.trim()) } catch { return `not a URL: ${JSON.stringify(text)}` }
  const path = u.pathname.replace(/\/+$/, '')
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') return `a supernode URL has no query, fragment or credentials: ${JSON.stringify(text)}`
  if (u.protocol === 'http:' || u.protocol === 'https:') return { kind: 'url', url: `${u.protocol}//${u.host}${path}` }
  if (u.protocol === 'dns+http:' || u.protocol === 'dns+https:') {
    const scheme = u.protocol === 'dns+https:' ? 'https' : 'http'
    if (u.hostname === '' || u.hostname.startsWith('[')) return `dns+${scheme}:// needs a DNS name: ${JSON.stringify(text)}`
    const port = u.port === '' ? (scheme === 'https' ? 443 : 80) : Number(u.port)
    return { kind: 'dns', scheme, host: u.hostname, port, path }
  }
  return `expected http://, https://, dns+http:// or dns+https://, got ${JSON.stringify(text)}`
}

/** The base URL of one resolved address of a `dns` spec (IPv6 in brackets). */
export function addressUrl (spec: Extract<SupernodeSpec, { kind: 'dns' }>, address: string): string {
  const host = address.includes(':') ? `[${address}]` : address
  return `${spec.scheme}://${host}:${spec.port}${spec.path}`
}

/** The spec as written back (logs, status). */
export function formatSupernodeSpec (spec: SupernodeSpec): string {
  return spec.kind === 'url' ? spec.url : `dns+${spec.scheme}://${spec.host}:${spec.port}${spec.path}`
}
