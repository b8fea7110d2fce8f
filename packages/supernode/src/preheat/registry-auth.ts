import { basicAuthorization, type RegistryCredential } from './registry-credentials.js'

/** What a token endpoint granted (distribution token spec: `token`/`access_token`, `expires_in`). */
export interface TokenGrant {
  token: string
  expiresInS?: number | undefined
}

/** The port to a registry's token endpoint: `GET realm?service=&scope=`, optionally with Basic credentials. */
export type TokenFetcher = (request: { realm: string, service?: string | undefined, scope: string, authorization?: string | undefined }, signal: AbortSignal) => Promise<TokenGrant>

export interface Challenge {
  /** Lower-case: `basic`, `bearer`, … */
  scheme: string
  params: Record<string, string>
}

/** Parses the first challenge of a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge (header: string | undefined): Challenge | undefined {
  const m = header === undefined ? null : /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(.*)$/.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  for (const p of (m[2] as string).matchAll(/([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '')
  }
  return { scheme: (m[1] as string).toLowerCase(), params }
}

/**
 * The `exp` of a `Bearer <JWT>` (epoch ms), read without verifying the signature: only used to
 * decide how soon to start fetches, never to trust anything. Undefined when it is not a JWT.
 */
export function jwtExpiry (authorization: string | undefined): number | undefined {
  const m = authorization === undefined ? null : /^Bearer\s+[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i.exec(authorization.trim())
  if (m === null) return undefined
  try {
    const payload = JSON.parse(Buffer.from(m[1] as string, 'base64url').toString('utf8')) as { exp?: unknown }
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** Harbor's default `token_expiration` (30 min): assumed when its token is not a readable JWT. */
export const REQUEST_TOKEN_LIFETIME_MS = 30 * 60_000
/** A fetched token this close to expiry is renewed before use. */
const TOKEN_RENEW_MARGIN_MS = 30_000
/** Default token lifetime in the distribution token spec when `expires_in` is absent. */
const DEFAULT_TOKEN_LIFETIME_S = 60
/** A challenge right after fetching a token means the token does not grant access: stop there. */
const FRESH_TOKEN_MS = 10_000

export interface RegistryAuthorizerInit {
  /** The `Authorization` the preheat request carried (Harbor's registry token); memory only. */
  requestAuthorization?: string | undefined
  /** The supernode's own credential for this registry host. */
  credential?: RegistryCredential | undefined
  repository: string
  fetchToken: TokenFetcher
  now: () => number
  /** When the request was received: the origin of the assumed token lifetime. */
  receivedAt: number
}

/**
 * Chooses the `Authorization` for one job's registry calls. It starts with what the request brought
 * (else Basic with the supernode's credential, else nothing); after a 401 it follows the registry's
 * challenge: a Bearer realm gets a token (with the credential, or anonymously, as public Docker Hub
 * images need), a Basic realm gets the credential. Fetched tokens are renewed before they expire.
 */
export class RegistryAuthorizer {
  readonly #init: RegistryAuthorizerInit
  #authorization: string | undefined
  #source: 'request' | 'credential' | 'token' | 'none'
  #token: { realm: string, service: string | undefined, scope: string, expiresAt: number, fetchedAt: number } | undefined

  constructor (init: RegistryAuthorizerInit) {
    this.#init = init
    if (init.requestAuthorization !== undefined) {
      this.#authorization = init.requestAuthorization
      this.#source = 'request'
    } else if (init.credential !== undefined) {
      this.#authorization = basicAuthorization(init.credential)
      this.#source = 'credential'
    } else {
      this.#source = 'none'
    }
  }

  /** The header to send now; renews a fetched token that is about to expire. */
  async current (signal: AbortSignal): Promise<string | undefined> {
    const t = this.#token
    if (this.#source === 'token' && t !== undefined && t.expiresAt - this.#init.now() < TOKEN_RENEW_MARGIN_MS) {
      await this.#fetch(t.realm, t.service, t.scope, signal)
    }
    return this.#authorization
  }

  /**
   * Reacts to a 401 carrying `wwwAuthenticate`. Resolves true when there is something new to try
   * (the caller retries once), false when the registry refuses what we have and can get.
   */
  async challenged (wwwAuthenticate: string | undefined, signal: AbortSignal): Promise<boolean> {
    const challenge = parseChallenge(wwwAuthenticate)
    const realm = challenge?.params.realm
    if (challenge?.scheme === 'bearer' && realm !== undefined && realm !== '') {
      if (this.#source === 'token' && this.#token !== undefined && this.#init.now() - this.#token.fetchedAt < FRESH_TOKEN_MS) return false
      const scope = challenge.params.scope ?? `repository:${this.#init.repository}:pull`
      await this.#fetch(realm, challenge.params.service, scope, signal)
      return true
    }
    if (this.#init.credential !== undefined && this.#source !== 'credential') {
      this.#authorization = basicAuthorization(this.#init.credential)
      this.#source = 'credential'
      return true
    }
    return false
  }

  /**
   * When the current credential stops working with no way to renew it (epoch ms): a request token
   * with no supernode credential behind it. Undefined when renewable or unbounded.
   */
  deadline (): number | undefined {
    if (this.#source !== 'request' || this.#init.credential !== undefined) return undefined
    return jwtExpiry(this.#init.requestAuthorization) ?? this.#init.receivedAt + REQUEST_TOKEN_LIFETIME_MS
  }

  async #fetch (realm: string, service: string | undefined, scope: string, signal: AbortSignal): Promise<void> {
    const cred = this.#init.credential
    const grant = await this.#init.fetchToken({ realm, service, scope, authorization: cred === undefined ? undefined : basicAuthorization(cred) }, signal)
    const now = this.#init.now()
    this.#token = { realm, service, scope, fetchedAt: now, expiresAt: now + (grant.expiresInS ?? DEFAULT_TOKEN_LIFETIME_S) * 1000 }
    this.#authorization = `Bearer ${grant.token}`
    this.#source = 'token'
  }
}
