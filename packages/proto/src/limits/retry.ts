/**
 * How both binaries retry an upstream registry (back-to-source, pass-through, access checks):
 * which answers are worth another try, and how long to wait before it.
 */

/** Statuses worth another try: the registry (or a proxy before it) is briefly unable to answer. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/** A `Retry-After` longer than this is not waited out inside a request: the answer stands. */
export const MAX_RETRY_AFTER_MS = 5_000

/**
 * Delay before attempt `attempt + 1`: `base × 2^(attempt-1)` with ±20% jitter (so a fleet retrying
 * together spreads out), or the upstream's `Retry-After` seconds when it sent some. `undefined` when
 * that asks for more than `MAX_RETRY_AFTER_MS`.
 */
export function retryDelayMs (attempt: number, baseMs: number, retryAfter?: string | string[]): number | undefined {
  const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter
  if (header !== undefined && /^\d+$/.test(header.trim())) {
    const ms = Number(header.trim()) * 1000
    return ms > MAX_RETRY_AFTER_MS ? undefined : ms
  }
  const ms = baseMs * 2 ** (attempt - 1)
  return Math.round(ms * (0.8 + Math.random() * 0.4))
}

/** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
export async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** `[start, end]` (inclusive) of a `Content-Range: bytes a-b/total` value. */
export function parseContentRange (value: string | undefined): { start: number, end: number, total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '')
  if (m === null) return undefined
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) }
}
