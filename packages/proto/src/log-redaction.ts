/**
 * What both binaries' pino loggers censor. Data only (proto never logs): each binary passes
 * `LOG_REDACT` as pino's `redact` option, so one list covers the supernode and the dfclient.
 *
 * pino matches exact paths (a `*` stands for one level), never "this key anywhere", so the list names
 * every place a secret can sit in what this code logs: at the top of a line, one object down
 * (`{ req: { authorization } }`), inside any `headers` object up to two levels down (request, response
 * and error headers), and Harbor's whole `args.headers` map (its registry token, under whatever
 * header name Harbor chose). Keys are matched case-sensitively, hence both spellings of the headers.
 */

/** Keys whose values are credentials wherever they appear. */
const SECRET_KEYS = [
  'authorization', 'Authorization', 'proxyAuthorization', 'cookie', 'Cookie', 'token', 'accessToken', 'access_token',
  'refreshToken', 'refresh_token', 'password', 'secret', 'preheatToken', 'registryAuth', 'credentials'
] as const

/** Header names that carry credentials and need pino's bracket syntax (they contain a dash). */
const DASHED_HEADERS = ['proxy-authorization', 'set-cookie', 'Set-Cookie', 'x-registry-auth', 'api-key'] as const

function paths (): string[] {
  const out: string[] = []
  for (const k of SECRET_KEYS) out.push(k, `*.${k}`, `headers.${k}`, `*.headers.${k}`, `*.*.headers.${k}`)
  for (const h of DASHED_HEADERS) out.push(`["${h}"]`, `*["${h}"]`, `headers["${h}"]`, `*.headers["${h}"]`, `*.*.headers["${h}"]`)
  // Harbor's preheat bodies: `args.headers` is the registry's auth, whatever its header name.
  out.push('args.headers', '*.args.headers', '*.*.args.headers')
  return out
}

/** pino's `redact` option for both binaries. */
export const LOG_REDACT: { readonly paths: readonly string[], readonly censor: string } = Object.freeze({
  paths: Object.freeze(paths()),
  censor: '[redacted]'
})
