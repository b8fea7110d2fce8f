import { request } from 'undici'
import { runCommand } from './processes.js'

/**
 * Prometheus text exposition parsed into a map from series key to value. The key is the metric name
 * followed by its labels sorted by name, e.g. `damselfly_blob_bytes_served_total{source="local"}`;
 * a series without labels is just its name.
 */
export type Metrics = Map<string, number>

/** Builds the series key used by {@link Metrics}. */
export function seriesKey (name: string, labels: Record<string, string> = {}): string {
  const keys = Object.keys(labels).sort()
  if (keys.length === 0) return name
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses Prometheus text format (comments and blank lines skipped). */
export function parseMetrics (text: string): Metrics {
  const out: Metrics = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = JSON.parse(`"${l[2]!}"`) as string
    const v = m[3]!
    out.set(seriesKey(m[1]!, labels), v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v))
  }
  return out
}

/**
 * GETs `<baseUrl>/metrics` and parses it. With `netns`, the GET is made by `curl` inside that network
 * namespace (a process in the root namespace cannot reach a namespace's own 127.0.0.1 or its address).
 */
export async function metrics (baseUrl: string, opts: { netns?: string } = {}): Promise<Metrics> {
  if (opts.netns !== undefined) {
    const url = new URL('/metrics', baseUrl).toString()
    const r = await runCommand('curl', ['-sS', '--fail', '--max-time', '10', url], { netns: opts.netns, timeoutMs: 15_000, maxOutput: 16 << 20 })
    if (r.code !== 0) throw new Error(`GET ${url} in netns ${opts.netns}: curl exit ${r.code} ${r.stderr.slice(0, 200)}`)
    return parseMetrics(r.stdout)
  }
  const res = await request(new URL('/metrics', baseUrl))
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`GET ${baseUrl}/metrics: HTTP ${res.statusCode} ${text.slice(0, 200)}`)
  return parseMetrics(text)
}

/** Value of one series, 0 when absent (counters that were never incremented are often not exported). */
export function metricValue (m: Metrics, name: string, labels: Record<string, string> = {}): number {
  return m.get(seriesKey(name, labels)) ?? 0
}

/** Sum over every series of `name` whose labels include `labels`. */
export function metricSum (m: Metrics, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const [key, v] of m) {
    if (key !== name && !key.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, val]) => key.includes(`${k}=${JSON.stringify(val)}`))) sum += v
  }
  return sum
}
