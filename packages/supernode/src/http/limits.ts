import type { Duplex } from 'node:stream'
import type { RequestHandler } from 'express'
import { API_LIMITS, clientErrorStatus, ConcurrencyGate, gateQueueLimit, dfError, GATE_WAIT_MS, rawErrorResponse } from '@damselfly/proto'

/**
 * A body announced over the API's limit is refused before a byte of it is read (413
 * DF_ERR_BODY_TOO_LARGE), and so is one with no length (chunked) past the limit by the JSON parser.
 * Either way the connection closes after the answer, so Node does not read and discard the rest of
 * an unbounded body to keep the connection alive.
 */
export const bodyLimit: RequestHandler = (req, res, next) => {
  const length = req.headers['content-length']
  if (req.headers['transfer-encoding'] !== undefined) res.setHeader('Connection', 'close')
  if (length !== undefined && Number(length) > API_LIMITS.maxBodyBytes) {
    res.setHeader('Connection', 'close')
    next(dfError('DF_ERR_BODY_TOO_LARGE', `request body of ${length} bytes is over the ${API_LIMITS.maxBodyBytes}-byte limit`))
    return
  }
  next()
}

/**
 * At most `concurrency` requests at once, long-polls included; more wait in FIFO order (16× as many, at least
 * 1,024, 120 s at most), then get 429 DF_ERR_TOO_MANY_REQUESTS with `Retry-After`. Keeps a flood from
 * exhausting sockets and memory; probes and metrics are mounted before it.
 */
export function requestGate (concurrency: number): RequestHandler {
  const gate = new ConcurrencyGate({ concurrency, queueLimit: gateQueueLimit(concurrency), queueTimeoutMs: GATE_WAIT_MS })
  return (_req, res, next) => {
    gate.holdWhileOpen(res, next, reason => {
      res.setHeader('Retry-After', '1')
      next(dfError('DF_ERR_TOO_MANY_REQUESTS', `the supernode is at its limit of ${concurrency} concurrent requests; retry shortly`, { details: { reason } }))
    }, next)
  }
}

/**
 * `clientError` handler of the supernode's server: requests Node refuses itself (headers over 16 KiB,
 * too slow, malformed) get a 4xx in the API's error format (`{"error":{code,message}}`).
 */
export function apiClientError (err: Error & { code?: string }, socket: Duplex): void {
  const { status, reason } = clientErrorStatus(err.code)
  const code = status === 413 || status === 431 ? 'DF_ERR_BODY_TOO_LARGE' : 'DF_ERR_BAD_REQUEST'
  if (socket.writable) socket.end(rawErrorResponse(status, reason, JSON.stringify({ error: { code, message: `${reason} (${err.code ?? 'bad request'})` } })))
  else socket.destroy()
}
