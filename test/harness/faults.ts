import { createHash } from 'node:crypto'
import { open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { layoutFor } from '@damselfly/proto'
import { request } from 'undici'
import type { DamselflyProcess } from './binaries.js'
import { layerBlob } from './layer-blob.js'
import { pushBlob } from './push.js'
import type { Registry } from './registry.js'

/** A blob pushed to a registry, with its bytes on disk (the layer cache). */
export interface PushedBlob { digest: string, size: number, path: string, mediaType: string }

/** A deterministic incompressible blob of ~`size` bytes, pushed under `repo`. */
export async function pushedBlob (registry: Registry, repo: string, seed: string, size: number): Promise<PushedBlob> {
  const l = await layerBlob(seed, 0, size)
  const blob = { digest: l.digest, size: l.size, path: l.path, mediaType: 'application/octet-stream' }
  await pushBlob(registry, repo, blob)
  return blob
}

/** SIGKILLs a Damselfly process (no clean shutdown: no leave, no flush) and waits for it to be gone. */
export async function killHard (p: DamselflyProcess): Promise<void> {
  try { process.kill(p.process.pid, 'SIGKILL') } catch { /* already gone */ }
  await p.process.exited
}

/** Polls `cond` every 50 ms until it holds; throws `what` after `timeoutMs`. */
export async function waitFor (cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Where a dfclient keeps a blob's data (`<dataDir>/blobs/sha256/<hex>`); the sidecar is `.json` next to it. */
export function cacheFile (dataDir: string, digest: string): string {
  return join(dataDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''))
}

/** Flips one byte of a file in place (what a bad disk sector, or a stray writer, does). */
export async function flipByte (path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, offset)
    b[0] = b[0]! ^ 0xff
    await fh.write(b, 0, 1, offset)
  } finally {
    await fh.close()
  }
}

/** What a streaming GET delivered. `error` is set when the body broke off (never a complete wrong body). */
export interface Fetched {
  status: number
  headers: Record<string, string | string[] | undefined>
  bytes: number
  digest: string
  body?: Buffer
  error?: string
}

/**
 * GETs `url`, hashing the body as it streams. `onBytes` sees the running total (a test can act
 * mid-transfer); `keep` keeps the body for byte comparisons.
 */
export async function streamGet (url: string, opts: { headers?: Record<string, string>, onBytes?: (total: number) => void, keep?: boolean, timeoutMs?: number } = {}): Promise<Fetched> {
  const res = await request(url, { headers: opts.headers, headersTimeout: opts.timeoutMs ?? 120_000, bodyTimeout: opts.timeoutMs ?? 120_000 })
  const hash = createHash('sha256')
  const parts: Buffer[] = []
  let bytes = 0
  let error: string | undefined
  try {
    for await (const chunk of res.body) {
      const c = chunk as Buffer
      hash.update(c)
      if (opts.keep === true) parts.push(c)
      bytes += c.length
      opts.onBytes?.(bytes)
    }
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  }
  return { status: res.statusCode, headers: res.headers, bytes, digest: `sha256:${hash.digest('hex')}`, ...(opts.keep === true ? { body: Buffer.concat(parts) } : {}), ...(error === undefined ? {} : { error }) }
}

/** Bytes `[start, end]` of a file. */
export async function fileBytes (path: string, start = 0, end?: number): Promise<Buffer> {
  const all = await readFile(path)
  return all.subarray(start, end === undefined ? undefined : end + 1)
}

/**
 * Checks a dfclient's piece cache on disk the way a restart reads it: every sidecar parses, and
 * every piece it calls held hashes to its recorded digest. Returns the problems found (none = consistent)
 * and how many pieces are held.
 */
export async function auditCache (dataDir: string): Promise<{ problems: string[], heldPieces: number, blobs: number }> {
  const dir = join(dataDir, 'blobs', 'sha256')
  const problems: string[] = []
  let heldPieces = 0
  let blobs = 0
  let names: string[] = []
  try { names = await readdir(dir) } catch { return { problems, heldPieces, blobs } }
  for (const name of names.filter(n => n.endsWith('.json'))) {
    let side: { digest: string, size: number, pieceSize?: number, pieces: Record<string, string> }
    try { side = JSON.parse(await readFile(join(dir, name), 'utf8')) } catch (err) { problems.push(`${name}: unreadable sidecar (${String(err)})`); continue }
    blobs++
    const data = await readFile(join(dir, name.slice(0, -'.json'.length))).catch(() => undefined)
    if (data === undefined) { problems.push(`${name}: data file missing`); continue }
    // The piece layout rule (proto piece-layout), which the sidecar records.
    const pieceSize = layoutFor(side.size).pieceSize
    if (side.pieceSize !== pieceSize) problems.push(`${name}: sidecar says pieces of ${String(side.pieceSize)} bytes, the layout rule ${pieceSize}`)
    for (const [index, digest] of Object.entries(side.pieces)) {
      const start = Number(index) * pieceSize
      const piece = data.subarray(start, Math.min(start + pieceSize, side.size))
      const actual = `sha256:${createHash('sha256').update(piece).digest('hex')}`
      heldPieces++
      if (actual !== digest) problems.push(`${side.digest} piece ${index}: on disk ${actual}, sidecar says ${digest}`)
    }
  }
  return { problems, heldPieces, blobs }
}

/** Resident and peak resident memory of a process, in MiB (`/proc/PID/status` VmRSS and VmHWM). */
export async function memoryMiB (pid: number): Promise<{ rss: number, peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}
