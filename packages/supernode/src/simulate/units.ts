const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 }
const BIT_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 }

/** `1GiB`, `512MiB`, `100MB`, `4096` → bytes; undefined when not a size. */
export function parseSize (text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  if (m === null) return undefined
  const unit = (m[2] ?? '').toLowerCase() || 'b'
  const factor = SIZE_UNITS[unit]
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor)
}

/** `1Gbit`, `10Gbit/s`, `125MB` (bytes per second), `100MiB/s` → bytes per second; undefined otherwise. */
export function parseRate (text: string): number | undefined {
  const t = text.trim().replace(/\/s$/i, '').replace(/bps$/i, 'bit')
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(t)
  if (m === null) return parseSize(t)
  const unit = (m[2] as string).toLowerCase()
  const bits = BIT_UNITS[unit]
  if (bits !== undefined) return Number(m[1]) * bits / 8
  return parseSize(t)
}
