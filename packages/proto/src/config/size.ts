/** A size as written in config: bytes, a unit (`150MiB`, `20GiB`, `500MB`) or a share of the disk (`30%`). */
export type SizeSpec = { bytes: number } | { percent: number }

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4
}

/** Parses a size spec; `undefined` when it is not one. */
export function parseSize (text: string): SizeSpec | undefined {
  const value = text.trim()
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(value)
  if (pct !== null) {
    const percent = Number(pct[1])
    return percent > 0 && percent <= 100 ? { percent } : undefined
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value)
  if (m === null) return undefined
  const unit = UNITS[(m[2] as string).toLowerCase()]
  if (unit === undefined) return undefined
  const bytes = Math.floor(Number(m[1]) * unit)
  return Number.isSafeInteger(bytes) ? { bytes } : undefined
}

/** Formats bytes for people: `1.5 GiB`. */
export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}
