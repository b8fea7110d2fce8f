/**
 * Limits both HTTP servers apply to what a client may send and how long it may take (plain data:
 * each binary passes them to `http.createServer`). Why each one: a mirror or supernode port is
 * reachable by every workload on the node or in the cluster, so a buggy or hostile client must not be
 * able to tie up memory, sockets or the event loop.
 */

/** Request line plus headers (Node's default, named here so it is a decision, not an accident). */
export const MAX_HEADER_BYTES = 16 * 1024

/** A socket with no bytes moving either way for this long is closed (a reader that stopped reading). */
export const IDLE_SOCKET_MS = 120_000

/** How often Node checks sockets against the request and headers timeouts (its default is 30 s). */
const TIMEOUT_CHECK_MS = 1_000

/** Options for `http.createServer` given the time a client has to send its whole request. */
export function httpServerLimits (requestTimeoutMs: number): { maxHeaderSize: number, requestTimeout: number, headersTimeout: number, keepAliveTimeout: number, connectionsCheckingInterval: number } {
  return {
    maxHeaderSize: MAX_HEADER_BYTES,
    // Headers and the whole request (our requests are small) must arrive within this: slowloris.
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    keepAliveTimeout: 65_000,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, Math.max(100, Math.floor(requestTimeoutMs / 2)))
  }
}

/** Waiting room of a request gate: 16× its concurrency, and never fewer than 1,024 (a burst of a
 * thousand requests is queued, not refused). Waiting costs a socket and a few KiB, not buffers. */
export function gateQueueLimit (concurrency: number): number {
  return Math.max(1024, concurrency * 16)
}
/**
 * Longest a request waits for a slot before it is refused (429 with Retry-After). Generous: a burst
 * is better served late than refused (containerd sets no per-request deadline), while a request
 * nobody will ever serve still ends.
 */
export const GATE_WAIT_MS = 120_000

/**
 * The status Node's HTTP parser failures deserve: 431 for oversized headers, 408 for a request that
 * did not arrive in time, 413 for an oversized body chunk, 400 for anything malformed.
 */
export function clientErrorStatus (code: string | undefined): { status: number, reason: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return { status: 431, reason: 'Request Header Fields Too Large' }
    case 'ERR_HTTP_REQUEST_TIMEOUT': return { status: 408, reason: 'Request Timeout' }
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return { status: 413, reason: 'Content Too Large' }
    default: return { status: 400, reason: 'Bad Request' }
  }
}

/**
 * The raw HTTP/1.1 response for a request Node refused before any handler saw it, carrying `body`
 * (JSON in the server's own error format) and closing the connection.
 */
export function rawErrorResponse (status: number, reason: string, body: string): string {
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}
