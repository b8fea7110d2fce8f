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

/** Linux USER_HZ: the unit of /proc CPU times (100 on every mainstream architecture). */
const CLOCK_TICKS_PER_SECOND = 100

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export async function processCpuSeconds (pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command (which may contain spaces): utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return 0
  }
}

/** Whole-machine CPU seconds so far: busy (everything but idle and iowait) and total, over all cores. */
export async function machineCpuSeconds (): Promise<{ busy: number, total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? ''
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = t.reduce((a, b) => a + b, 0)
  const idle = (t[3] ?? 0) + (t[4] ?? 0)
  return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND }
}

/**
 * CPU used by named groups of processes and by the whole machine between `start()` and `stop()`.
 * What the groups do not explain (kernel network and softirq work, short-lived tools) is "other".
 */
export class CpuAccount {
  readonly #groups: Map<string, number[]>
  #start: { machine: { busy: number, total: number }, perPid: Map<number, number> } | undefined

  constructor (groups: Record<string, number[]>) {
    this.#groups = new Map(Object.entries(groups))
  }

  async start (): Promise<void> {
    this.#start = { machine: await machineCpuSeconds(), perPid: await this.#perPid() }
  }

  /** Seconds per group, `other`, and the machine's busy core-seconds, wall seconds and cores. */
  async stop (): Promise<CpuUse> {
    const s = this.#start
    if (s === undefined) throw new Error('CpuAccount.stop() before start()')
    const perPid = await this.#perPid()
    const machine = await machineCpuSeconds()
    const groups: Record<string, number> = {}
    let attributed = 0
    for (const [name, pids] of this.#groups) {
      const used = pids.reduce((n, pid) => n + Math.max(0, (perPid.get(pid) ?? 0) - (s.perPid.get(pid) ?? 0)), 0)
      groups[name] = used
      attributed += used
    }
    const busy = machine.busy - s.machine.busy
    groups.other = Math.max(0, busy - attributed)
    return { groups, busy, available: machine.total - s.machine.total }
  }

  async #perPid (): Promise<Map<number, number>> {
    const m = new Map<number, number>()
    for (const pids of this.#groups.values()) for (const pid of pids) m.set(pid, await processCpuSeconds(pid))
    return m
  }
}

export interface CpuUse {
  /** CPU seconds per group, plus `other`. */
  groups: Record<string, number>
  /** Busy core-seconds of the whole machine. */
  busy: number
  /** Core-seconds that elapsed (wall time × cores). */
  available: number
}
