/** A scrape of `/metrics`: series key (`name{a="x",b="y"}`, labels sorted) → value. */
export type Scrape = Map<string, number>

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses the Prometheus text format (comments skipped). */
export function parseScrape (text: string): Scrape {
  const out: Scrape = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) continue
    const labels = [...(m[2] ?? '').matchAll(LABEL)].map(l => [l[1] as string, l[2] as string] as const).sort((a, b) => a[0].localeCompare(b[0]))
    const key = labels.length === 0 ? m[1] as string : `${m[1] as string}{${labels.map(([k, v]) => `${k}="${v}"`).join(',')}}`
    out.set(key, Number(m[3]))
  }
  return out
}

/** Sum of every series of `name` whose labels include `labels`. */
export function sumOf (s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const [key, v] of s) {
    if (key !== name && !key.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, val]) => key.includes(`${k}="${val}"`))) sum += v
  }
  return sum
}

/** Label values of `label` on series of `name`, with their value increase from `before` to `after`. */
export function increases (before: Scrape, after: Scrape, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, v] of after) {
    if (!key.startsWith(`${name}{`)) continue
    const m = new RegExp(`${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(key)
    if (m === null) continue
    const d = v - (before.get(key) ?? 0)
    if (d > 0) out[m[1] as string] = (out[m[1] as string] ?? 0) + d
  }
  return out
}
