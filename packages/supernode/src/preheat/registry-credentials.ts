import { canonicalRegistryHost, dfError } from '@damselfly/proto'

/** A registry login the supernode holds (from `--registry-auth` or `--registry-auth-file`). */
export interface RegistryCredential {
  username: string
  password: string
}

/** Registry host (canonical, e.g. `docker.io`, `127.0.0.1:5000`) → its credential. */
export type RegistryCredentials = ReadonlyMap<string, RegistryCredential>

/**
 * Parses a Docker `config.json` (`{"auths":{"HOST":{"auth":"base64(user:pass)"}}}`, or
 * `username`/`password` fields; keys may be URLs like `https://index.docker.io/v1/`), the file
 * operators already have for Kubernetes pull secrets. Credential helpers are not consulted.
 * Throws DF_ERR_CONFIG_INVALID naming the entry, never its secret.
 */
export function parseDockerConfig (text: string, path: string): Map<string, RegistryCredential> {
  let doc: { auths?: Record<string, { auth?: unknown, username?: unknown, password?: unknown }> }
  try {
    doc = JSON.parse(text)
  } catch {
    throw dfError('DF_ERR_CONFIG_INVALID', `${path}: not valid JSON`)
  }
  const out = new Map<string, RegistryCredential>()
  if (doc === null || typeof doc !== 'object' || doc.auths === null || typeof doc.auths !== 'object') {
    throw dfError('DF_ERR_CONFIG_INVALID', `${path}: expected {"auths": {HOST: {"auth": "..."}}}`)
  }
  for (const [key, entry] of Object.entries(doc.auths)) {
    const host = hostOfAuthKey(key)
    let username: unknown = entry?.username
    let password: unknown = entry?.password
    if (typeof entry?.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon <= 0) throw dfError('DF_ERR_CONFIG_INVALID', `${path}: auths[${JSON.stringify(key)}].auth is not base64(USER:PASS)`)
      username = decoded.slice(0, colon)
      password = decoded.slice(colon + 1)
    }
    if (typeof username !== 'string' || username === '' || typeof password !== 'string') {
      throw dfError('DF_ERR_CONFIG_INVALID', `${path}: auths[${JSON.stringify(key)}] has neither "auth" nor "username" and "password"`)
    }
    out.set(host, { username, password })
  }
  return out
}

/** `https://index.docker.io/v1/` → `docker.io`; `registry.example:5000` stays. */
function hostOfAuthKey (key: string): string {
  const host = /^[a-z]+:\/\//i.test(key) ? new URL(key).host : key.split('/')[0] as string
  return canonicalRegistryHost(host)
}

/** File entries overlaid by flag/env/YAML entries (the more specific source wins). */
export function mergeCredentials (fromFile: ReadonlyMap<string, RegistryCredential>, fromConfig: Readonly<Record<string, RegistryCredential>>): Map<string, RegistryCredential> {
  const out = new Map(fromFile)
  for (const [host, cred] of Object.entries(fromConfig)) out.set(canonicalRegistryHost(host), cred)
  return out
}

/** `Basic base64(user:pass)`. */
export function basicAuthorization (cred: RegistryCredential): string {
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`
}
