/** Result of matching a `Range` header against a blob size. `end` is inclusive. */
export type RangeResult =
  | { type: 'full' }
  | { type: 'partial', start: number, end: number }
  | { type: 'unsatisfiable' }

/**
 * Single byte ranges only (RFC 9110 §14): `a-b`, `a-`, `-n`. Headers that are absent, not `bytes=`,
 * malformed or multi-range are ignored (the whole blob is served with 200), as RFC 9110 permits.
 * `b` past the end is clamped. A start at or past the size, `b < a` and `-0` are unsatisfiable (416),
 * matching the OCI conformance suite's expectations (`500-0`, `5000-10000` on 2048 bytes).
 */
export function parseRange (header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { type: 'full' }
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (m === null) return { type: 'full' }
  const a = m[1] as string
  const b = m[2] as string
  if (a === '' && b === '') return { type: 'full' }
  if (a === '') {
    const n = Number(b)
    if (n === 0 || size === 0) return { type: 'unsatisfiable' }
    return { type: 'partial', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  if (!Number.isSafeInteger(start) || start >= size) return { type: 'unsatisfiable' }
  if (b === '') return { type: 'partial', start, end: size - 1 }
  const last = Number(b)
  if (last < start) return { type: 'unsatisfiable' }
  return { type: 'partial', start, end: Math.min(last, size - 1) }
}
