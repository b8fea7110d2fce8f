import type { Logger } from 'pino'

/**
 * Why a piece was not cached: `quota` (every cached blob busy or pinned), `disk_full` (ENOSPC or
 * EDQUOT from the filesystem) or `io` (any other write or flush failure).
 */
export type CacheWriteFailureReason = 'quota' | 'disk_full' | 'io'

export interface CacheWriteFailure {
  digest: string
  index: number
  reason: CacheWriteFailureReason
  error: Error
}

export function writeFailureReason (err: unknown): CacheWriteFailureReason {
  const code = (err as { code?: unknown } | undefined)?.code
  if (code === 'DF_ERR_CACHE_FULL') return 'quota'
  return code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'io'
}

/** Log at most one line per blob and reason in this window; the metric counts every piece. */
const LOG_EVERY_MS = 60_000

/**
 * What the daemon does when a piece cannot be cached: count it in
 * `damselfly_cache_write_failures_total{reason}` and log one warn line per blob and reason a minute,
 * saying the pull goes on without caching (a full disk must never fail a pull, nor flood the log).
 */
export function writeFailureReporter (logger: Logger, count: (reason: CacheWriteFailureReason) => void, now: () => number = Date.now): (f: CacheWriteFailure) => void {
  const logged = new Map<string, number>()
  return (f) => {
    count(f.reason)
    const key = `${f.reason} ${f.digest}`
    const t = now()
    if (t - (logged.get(key) ?? -Infinity) < LOG_EVERY_MS) return
    if (logged.size > 1000) logged.clear()
    logged.set(key, t)
    logger.warn({ taskId: f.digest, pieceIndex: f.index, reason: f.reason, err: f.error.message }, 'piece not cached; serving it to the client without caching')
  }
}
