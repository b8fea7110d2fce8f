import type { ErrorRequestHandler, RequestHandler } from 'express'
import { ZodError } from 'zod'
import { dfError, isDfError, type ApiErrorBody, type DfError } from '@damselfly/proto'
import type { RequestLogLocals } from './request-log.js'

/** Turns a ZodError into DF_ERR_BAD_REQUEST listing every issue with its path. */
export function badRequestFrom (err: ZodError, where: string): DfError {
  const issues = err.issues.map(i => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }))
  return dfError('DF_ERR_BAD_REQUEST', `invalid ${where}: ${issues.map(i => `${i.path}: ${i.message}`).join('; ')}`, { details: { issues } })
}

/** Maps body-parser's errors (they carry `type` and `status`) to catalogue errors. */
function fromBodyParser (err: unknown): DfError | undefined {
  const e = err as { type?: unknown, status?: unknown, message?: string }
  if (e === null || typeof e !== 'object' || typeof e.type !== 'string') return undefined
  if (e.type === 'entity.too.large') return dfError('DF_ERR_BODY_TOO_LARGE', 'request body too large')
  if (e.type === 'entity.parse.failed') return dfError('DF_ERR_BAD_REQUEST', `malformed JSON body: ${e.message ?? ''}`)
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return dfError('DF_ERR_BAD_REQUEST', e.message ?? 'unreadable request body', { httpStatus: e.status })
  return undefined
}

/** Unknown route → 404 DF_ERR_NOT_FOUND. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(dfError('DF_ERR_NOT_FOUND', `no route for ${req.method} ${req.path}`))
}

/**
 * The one place errors become HTTP: `{"error":{"code","message","details?"}}` with the catalogue's
 * status; nothing escapes to crash the process. The error goes into the request's one log line
 * (`request-log.ts`): the code always, the error with its stack for a 5xx (logged at error), the
 * message for a 4xx.
 */
export function errorHandler (): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    const known = isDfError(err) ? err : err instanceof ZodError ? badRequestFrom(err, 'request') : fromBodyParser(err)
    const mapped = known ?? dfError('DF_ERR_INTERNAL', 'internal error')
    const locals = res.locals as RequestLogLocals
    locals.errorCode = mapped.code
    if (mapped.httpStatus >= 500) locals.err = err
    else locals.detail = mapped.message
    if (res.headersSent) {
      res.destroy()
      return
    }
    const body: ApiErrorBody = { error: { code: mapped.code, message: mapped.message } }
    if (mapped.details !== undefined) body.error.details = mapped.details
    res.status(mapped.httpStatus).json(body)
  }
}
