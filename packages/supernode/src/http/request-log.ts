import type { RequestHandler, Response } from 'express'
import type { Logger } from 'pino'

/**
 * What handlers and the error handler may put in `res.locals` for the request's log line. The error
 * handler adds `errorCode` (and `err` for a 5xx, `detail` for a 4xx) instead of logging a line of its
 * own, so every request ends in exactly one line.
 */
export interface RequestLogLocals {
  taskId?: string
  peerId?: string
  errorCode?: string
  err?: unknown
  detail?: string
}

/**
 * One line per request when it completes (`"msg":"request completed"`): method, path, status, body
 * bytes, milliseconds, and what handlers added. Level: error for a 5xx, debug for a success on one of
 * `quietPaths` (probes, metrics scrapes, the dashboard's polls: frequent and uninteresting), info
 * otherwise (a refused dashboard poll included: a wrong token is worth seeing).
 */
export function requestLog (logger: Logger, now: () => number, quietPaths: ReadonlySet<string>): RequestHandler {
  return (req, res, next) => {
    const started = now()
    // Captured now: inside routers req.path is relative to the mount point.
    const path = req.path
    const method = req.method
    res.on('close', () => {
      const locals = res.locals as RequestLogLocals
      const status = res.statusCode
      const line = {
        method,
        path,
        status,
        bytes: bodyBytes(method, res),
        ms: now() - started,
        ...(locals.taskId === undefined ? {} : { taskId: locals.taskId }),
        ...(locals.peerId === undefined ? {} : { peerId: locals.peerId }),
        ...(locals.errorCode === undefined ? {} : { code: locals.errorCode }),
        ...(locals.detail === undefined ? {} : { detail: locals.detail }),
        ...(locals.err === undefined ? {} : { err: locals.err }),
        // A response cut short (client gone, shutdown) is worth telling apart from a complete one.
        ...(res.writableFinished ? {} : { aborted: true })
      }
      if (status >= 500) logger.error(line, 'request completed')
      else if (status < 400 && quietPaths.has(path)) logger.debug(line, 'request completed')
      else logger.info(line, 'request completed')
    })
    next()
  }
}

/**
 * Body bytes sent: every supernode response is a whole buffer (JSON, text, a static file) sent with
 * its Content-Length, so that header is the count; HEAD and bodiless statuses send none.
 */
function bodyBytes (method: string, res: Response): number {
  if (method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0
  const length = Number(res.getHeader('content-length') ?? 0)
  return Number.isFinite(length) ? length : 0
}
