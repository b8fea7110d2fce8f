import { createHash, timingSafeEqual } from 'node:crypto'
import type { RequestHandler } from 'express'
import { dfError } from '@damselfly/proto'

/** Compares secrets in constant time, hiding their lengths too (both sides are hashed first). */
function sameSecret (a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/**
 * Checks the preheat token on every preheat call, health checks included (Harbor sends its auth
 * on all three kinds of call, and a "Test connection" that ignores a wrong token would mislead).
 * Header `authorization` expects `Bearer TOKEN` (Harbor auth mode OAUTH); any other header name
 * expects the bare token in that header (Harbor auth mode CUSTOM). No token configured = open.
 */
export function requirePreheatToken (token: string | undefined, header: string): RequestHandler {
  return (req, _res, next) => {
    if (token === undefined) { next(); return }
    const value = req.get(header) ?? ''
    const presented = header === 'authorization' ? /^Bearer\s+(.+)$/i.exec(value)?.[1] : value
    if (presented === undefined || presented === '' || !sameSecret(presented, token)) {
      const how = header === 'authorization' ? 'Authorization: Bearer <token>' : `${header}: <token>`
      next(dfError('DF_ERR_PREHEAT_UNAUTHORIZED', `missing or wrong preheat token (${how})`))
      return
    }
    next()
  }
}
