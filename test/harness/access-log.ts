/**
 * Parser for the CNCF distribution (docker-registry 2.8) access log, which the registry writes to
 * **stdout** in Apache combined format, one line per request:
 *
 *   127.0.0.1 - - [23/Nov/2026:06:16:51 +0000] "GET /v2/x/blobs/sha256:… HTTP/1.1" 200 268481376 "" "curl/7.88.1"
 *
 * The size is the response body size the handler wrote. HEAD lines also carry a size although no body
 * is sent, so only GETs count as egress.
 */
export interface AccessLogEntry {
  method: string
  /** Request target as sent, including any query string. */
  target: string
  /** Path without the query string. */
  path: string
  status: number
  bytes: number
  userAgent: string
}

const LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-)(?: "[^"]*" "([^"]*)")?/
const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/

/** Parses one access-log line; returns undefined for anything else (the registry's logrus lines go to stderr). */
export function parseAccessLogLine (line: string): AccessLogEntry | undefined {
  const m = LINE.exec(line)
  if (m === null) return undefined
  const target = m[2]!
  const q = target.indexOf('?')
  return {
    method: m[1]!,
    target,
    path: q < 0 ? target : target.slice(0, q),
    status: Number(m[3]),
    bytes: m[4] === '-' ? 0 : Number(m[4]),
    userAgent: m[5] ?? ''
  }
}

export interface BlobGetStats {
  /** Number of GETs answered 200 or 206. */
  count: number
  /** Sum of their response body sizes. */
  bytes: number
}

/** Digest → stats for blob GETs with status 200/206 (HEADs and errors excluded). */
export function blobGets (entries: Iterable<AccessLogEntry>): Map<string, BlobGetStats> {
  const out = new Map<string, BlobGetStats>()
  for (const e of entries) {
    if (e.method !== 'GET' || (e.status !== 200 && e.status !== 206)) continue
    const m = BLOB_PATH.exec(e.path)
    if (m === null) continue
    const s = out.get(m[2]!) ?? { count: 0, bytes: 0 }
    s.count++
    s.bytes += e.bytes
    out.set(m[2]!, s)
  }
  return out
}

/** Sum of the body sizes of every GET response (any path, any status). */
export function egressBytes (entries: Iterable<AccessLogEntry>): number {
  let n = 0
  for (const e of entries) if (e.method === 'GET') n += e.bytes
  return n
}
