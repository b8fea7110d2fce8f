import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { Digester } from '@damselfly/proto'

export interface TimedGet {
  seconds: number
  bytes: number
  digest: string
  source: string | undefined
  status: number
}

/** GETs a URL, hashing the body as a client would, and times it from request to last byte. */
export async function timedGet (url: string): Promise<TimedGet> {
  const started = performance.now()
  const res = await request(url, { method: 'GET', headersTimeout: 120_000, bodyTimeout: 120_000 })
  const digester = new Digester('sha256')
  for await (const chunk of res.body) digester.update(chunk as Uint8Array)
  const source = res.headers['x-damselfly-source']
  return {
    seconds: (performance.now() - started) / 1000,
    bytes: digester.bytes,
    digest: digester.digest(),
    source: Array.isArray(source) ? source[0] : source,
    status: res.statusCode
  }
}

/** Peak resident set size of a process (VmHWM), in MiB. */
export async function peakRssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return m === null ? Number.NaN : Number(m[1]) / 1024
}

export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Prints rows as an aligned table. */
export function printTable (header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join('  ')
  console.log(line(header))
  console.log(widths.map(w => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
}
