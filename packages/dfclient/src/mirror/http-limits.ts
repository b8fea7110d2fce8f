import type { Duplex } from 'node:stream'
import type { RequestHandler } from 'express'
import { clientErrorStatus, ConcurrencyGate, gateQueueLimit, GATE_WAIT_MS, rawErrorResponse, type GateRefusal } from '@damselfly/proto'
import { sendOciError } from './oci-errors.js'

/** The mirror reads no request bodies (it is read-only); a client may send this much and be answered. */
export const MAX_MIRROR_BODY_BYTES = 64 * 1024

/**
 * At most `concurrency` mirror requests run at once; more wait in FIFO order (16× as many, at least 1,024,
 * for at most 120 s), then are refused with 429 TOOMANYREQUESTS and `Retry-After` — a status containerd
 * retries. Bounds the memory and file handles of a request burst (each blob response holds a few
 * MiB of buffers). Probes and metrics are not gated: a saturated mirror must still answer them.
 */
export function requestGate (concurrency: number, onRefused: (reason: GateRefusal) => void): RequestHandler {
  const gate = new ConcurrencyGate({ concurrency, queueLimit: gateQueueLimit(concurrency), queueTimeoutMs: GATE_WAIT_MS })
  return (_req, res, next) => {
    gate.holdWhileOpen(res, next, reason => {
      onRefused(reason)
      res.setHeader('Retry-After', '1')
      sendOciError(res, 429, 'TOOMANYREQUESTS', `the mirror is at its limit of ${concurrency} concurrent requests; retry shortly`)
    }, next)
  }
}

/**
 * Requests carrying a body: the connection is closed after the answer (so Node does not read and
 * discard an unbounded body to keep it alive), and a body announced over the limit is refused at
 * once with 413.
 */
export const refuseBodies: RequestHandler = (req, res, next) => {
  const length = req.headers['content-length']
  const chunked = req.headers['transfer-encoding'] !== undefined
  if (length === undefined && !chunked) { next(); return }
  res.setHeader('Connection', 'close')
  if (chunked || Number(length) > MAX_MIRROR_BODY_BYTES) {
    sendOciError(res, 413, 'SIZE_INVALID', `request bodies are limited to ${MAX_MIRROR_BODY_BYTES} bytes (this mirror is read-only)`)
    return
  }
  next()
}

/**
 * `clientError` handler of the mirror's server: requests Node refuses itself (headers over 16 KiB,
 * too slow, malformed) get a 4xx in the OCI error format instead of a bare status line.
 */
export function ociClientError (err: Error & { code?: string }, socket: Duplex): void {
  const { status, reason } = clientErrorStatus(err.code)
  const code = status === 431 || status === 413 ? 'SIZE_INVALID' : 'UNSUPPORTED'
  if (socket.writable) socket.end(rawErrorResponse(status, reason, JSON.stringify({ errors: [{ code, message: `${reason} (${err.code ?? 'bad request'})` }] })))
  else socket.destroy()
}
