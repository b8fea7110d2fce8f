import { createHash } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { Cleanup, layerBlob, MiB, pushBlob, startDfclient, startRegistry, startSupernode, stopAllProcesses, type DamselflyProcess } from '../harness/index.js'
import { CpuAccount, peakRssMiB, printTable } from './measure.js'

interface Blob { digest: string, size: number, path: string }
type Kind = 'hit' | 'hit-range' | 'miss' | 'miss-range'
interface Outcome { kind: Kind, ms: number, ok: boolean, status: number, source: string, why?: string }

const KIND_SHARE: Array<[Kind, number]> = [['hit', 0.55], ['hit-range', 0.25], ['miss', 0.12], ['miss-range', 0.08]]

/**
 * `npm run bench -- load [--concurrency 1000] [--duration 20] [--hits 24] [--misses 400]`: one dfclient
 * (default settings) under `concurrency` blob requests kept in flight for `duration` seconds — whole
 * blobs and random ranges of blobs it has cached (hits), and of blobs nobody has fetched yet (misses,
 * each cold blob asked for once or twice). Every body is checked: whole blobs against their digest,
 * ranges against the bytes on disk. Prints failures (must be 0), latency percentiles, throughput and
 * the dfclient's peak RSS. Measures; asserts nothing but correctness.
 */
export async function runLoadBench (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { concurrency: { type: 'string', default: '1000' }, duration: { type: 'string', default: '20' }, hits: { type: 'string', default: '24' }, misses: { type: 'string', default: '400' } } })
  const concurrency = Number(values.concurrency)
  const durationMs = Number(values.duration) * 1000
  const cleanup = new Cleanup()
  try {
    const registry = await startRegistry({ dir: await cleanup.tempDir('load-registry-') })
    cleanup.defer('registry', () => registry.stop())
    const registries = [{ host: registry.host, url: registry.url }]
    const make = async (seed: string, n: number, sizes: number[]): Promise<Blob[]> => {
      const out: Blob[] = []
      for (let i = 0; i < n; i++) {
        const l = await layerBlob(seed, i, sizes[i % sizes.length]!)
        await pushBlob(registry, 'load/app', { digest: l.digest, size: l.size, path: l.path, mediaType: 'application/octet-stream' })
        out.push({ digest: l.digest, size: l.size, path: l.path })
      }
      return out
    }
    const hits = await make('load-hit', Number(values.hits), [1 * MiB, 2 * MiB, 3 * MiB, 4 * MiB, 6 * MiB])
    // Fresh registry, supernode and dfclient every run: these are cold whatever the image cache holds.
    const misses = await make('load-miss', Number(values.misses), [256 * 1024, 1 * MiB, 2 * MiB])
    const supernode = await startSupernode({ dir: await cleanup.tempDir('load-sn-'), registries })
    cleanup.defer('supernode', () => supernode.stop())
    const df: DamselflyProcess = await startDfclient({ dir: await cleanup.tempDir('load-df-'), supernode: supernode.httpUrl, registries, extraArgs: (process.env.LOAD_DF_ARGS ?? '').split(' ').filter(a => a !== '') })
    cleanup.defer('dfclient', () => df.stop())
    const agent = new Agent({ connections: concurrency + 16, headersTimeout: 300_000, bodyTimeout: 300_000 })
    const url = (b: Blob): string => `${df.httpUrl}/v2/load/app/blobs/${b.digest}`
    // Warm the hits (and the page cache of the bench's own copies).
    for (const b of hits) await get(agent, url(b), b, undefined, 'hit')
    const rssBefore = await rssMiB(df.process.pid)
    console.log(`dfclient ${df.httpUrl}: ${hits.length} cached blobs, ${misses.length} cold ones; ${concurrency} requests in flight for ${durationMs / 1000} s`)

    const outcomes: Outcome[] = []
    let nextMiss = 0
    const deadline = Date.now() + durationMs
    const pick = (): { blob: Blob, kind: Kind } => {
      let r = Math.random()
      let kind: Kind = 'hit'
      for (const [k, share] of KIND_SHARE) { if (r < share) { kind = k; break } r -= share }
      // Each cold blob is asked for by one or two requests, then it is warm.
      if ((kind === 'miss' || kind === 'miss-range') && nextMiss < misses.length * 2) return { blob: misses[Math.floor(nextMiss++ / 2)]!, kind }
      return { blob: hits[Math.floor(Math.random() * hits.length)]!, kind: kind === 'miss-range' ? 'hit-range' : kind === 'miss' ? 'hit' : kind }
    }
    const cpu = new CpuAccount({ dfclient: [df.process.pid], supernode: [supernode.process.pid], registry: [registry.process.pid], 'bench client': [process.pid] })
    await cpu.start()
    const started = Date.now()
    let bytes = 0
    const worker = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const { blob, kind } = pick()
        const range = kind.endsWith('range') ? randomRange(blob.size) : undefined
        const o = await get(agent, url(blob), blob, range, kind)
        if (o.ok) bytes += range === undefined ? blob.size : range[1] - range[0] + 1
        outcomes.push(o)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const wall = (Date.now() - started) / 1000
    const used = await cpu.stop()
    const failures = outcomes.filter(o => !o.ok)
    const ms = outcomes.map(o => o.ms).sort((a, b) => a - b)
    const pct = (p: number): string => (ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]! / 1000).toFixed(2)
    const byKind = (k: Kind): Outcome[] => outcomes.filter(o => o.kind === k)
    console.log('')
    printTable(['requests', 'kind', 'failures', 'p50 s', 'p99 s'], [
      ...KIND_SHARE.map(([k]) => { const os = byKind(k); const s = os.map(o => o.ms).sort((a, b) => a - b); const q = (p: number): string => s.length === 0 ? '-' : (s[Math.min(s.length - 1, Math.floor(p * s.length))]! / 1000).toFixed(2); return [String(os.length), k, String(os.filter(o => !o.ok).length), q(0.5), q(0.99)] }),
      [String(outcomes.length), 'all', String(failures.length), pct(0.5), pct(0.99)]
    ])
    const sources = new Map<string, number>()
    for (const o of outcomes) sources.set(o.source, (sources.get(o.source) ?? 0) + 1)
    console.log('')
    console.log(`failures: ${failures.length} of ${outcomes.length} requests in ${wall.toFixed(1)} s (${(outcomes.length / wall).toFixed(0)} req/s, ${(bytes / wall / 1e6).toFixed(0)} MB/s of verified bodies)`)
    console.log(`latency: p50 ${pct(0.5)} s, p99 ${pct(0.99)} s, max ${(ms.at(-1)! / 1000).toFixed(2)} s`)
    console.log(`X-Damselfly-Source: ${[...sources].map(([s, n]) => `${s} ${n}`).join(', ')}`)
    console.log(`dfclient RSS: ${rssBefore.toFixed(0)} MiB before the load, peak (VmHWM) ${(await peakRssMiB(df.process.pid)).toFixed(0)} MiB, ${(await rssMiB(df.process.pid)).toFixed(0)} MiB after; supernode peak ${(await peakRssMiB(supernode.process.pid)).toFixed(0)} MiB`)
    console.log(`CPU seconds: ${Object.entries(used.groups).map(([g, v]) => `${g} ${v.toFixed(1)}`).join(', ')} (machine busy ${used.busy.toFixed(1)} of ${used.available.toFixed(1)} core-seconds)`)
    for (const f of failures.slice(0, 10)) console.log(`  failed: ${f.kind} status ${f.status} ${f.why ?? ''}`)
    if (failures.length > 0) process.exitCode = 1
    await agent.close()
  } finally {
    await stopAllProcesses()
    await cleanup.run()
  }
}

async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024
}

function randomRange (size: number): [number, number] {
  const start = Math.floor(Math.random() * size)
  const len = 1 + Math.floor(Math.random() * Math.min(2 * MiB, size - start))
  return [start, start + len - 1]
}

async function slice (path: string, start: number, end: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(end - start + 1)
    await fh.read(buf, 0, buf.length, start)
    return buf
  } finally {
    await fh.close()
  }
}

/** One GET, checked: a whole body against the digest, a range against the bytes on disk. */
async function get (agent: Agent, url: string, blob: Blob, range: [number, number] | undefined, kind: Kind): Promise<Outcome> {
  const started = performance.now()
  const done = (ok: boolean, status: number, source: string, why?: string): Outcome => ({ kind, ms: performance.now() - started, ok, status, source, ...(why === undefined ? {} : { why }) })
  try {
    const res = await request(url, { dispatcher: agent, headers: range === undefined ? {} : { range: `bytes=${range[0]}-${range[1]}` } })
    const source = String(res.headers['x-damselfly-source'] ?? 'none')
    const hash = createHash('sha256')
    const parts: Buffer[] = []
    let n = 0
    for await (const chunk of res.body) {
      const c = chunk as Buffer
      n += c.length
      if (range === undefined) hash.update(c)
      else parts.push(c)
    }
    if (range === undefined) {
      const digest = `sha256:${hash.digest('hex')}`
      return res.statusCode === 200 && digest === blob.digest ? done(true, res.statusCode, source) : done(false, res.statusCode, source, `${n} bytes, ${digest}`)
    }
    const want = await slice(blob.path, range[0], range[1])
    return res.statusCode === 206 && Buffer.concat(parts).equals(want) ? done(true, res.statusCode, source) : done(false, res.statusCode, source, `range ${range[0]}-${range[1]}: ${n} bytes`)
  } catch (err) {
    return done(false, 0, 'none', err instanceof Error ? err.message : String(err))
  }
}
