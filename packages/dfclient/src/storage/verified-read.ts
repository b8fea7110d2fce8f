import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { dfError, parseDigest, pieceIndexAt, pieceRange } from '@damselfly/proto'
import { isComplete, type CachedBlob } from './piece-cache.js'

/** A span of the blob whose bytes must hash to `digest`: the whole blob, or one piece. */
interface Check {
  start: number
  end: number
  digest: string
  code: 'DF_ERR_BLOB_DIGEST_MISMATCH' | 'DF_ERR_PIECE_DIGEST_MISMATCH'
}

/** What to read from disk so that bytes `[start, end]` (inclusive) can be checked, and against what. */
export interface VerifiedReadPlan {
  /** First byte to read (inclusive). */
  readStart: number
  /** Last byte to read (inclusive); may lie past `end` to finish hashing the last covering piece. */
  readEnd: number
  checks: Check[]
}

/**
 * Plans a verified read of bytes `[start, end]` (inclusive). A whole, complete blob is checked against
 * the blob digest (one SHA-256 pass, no per-piece work); any other range is checked piece by piece
 * against the digests recorded when the pieces were written, so it reads at most one piece's worth
 * before and after what was asked for. Throws DF_ERR_PIECE_UNAVAILABLE when a covering piece is not held.
 */
export function planVerifiedRead (blob: CachedBlob, start: number, end: number): VerifiedReadPlan {
  const { layout } = blob
  if (start === 0 && end === layout.size - 1 && isComplete(blob)) {
    return { readStart: 0, readEnd: end, checks: [{ start: 0, end: layout.size, digest: blob.digest, code: 'DF_ERR_BLOB_DIGEST_MISMATCH' }] }
  }
  const checks: Check[] = []
  for (let i = pieceIndexAt(layout, start); i <= pieceIndexAt(layout, end); i++) {
    const digest = blob.pieces.get(i)
    if (digest === undefined) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${i} of ${blob.digest} is not held`)
    const r = pieceRange(layout, i)
    checks.push({ start: r.start, end: r.end, digest, code: 'DF_ERR_PIECE_DIGEST_MISMATCH' })
  }
  return { readStart: checks[0]?.start ?? start, readEnd: (checks.at(-1)?.end ?? end + 1) - 1, checks }
}

/**
 * Passes bytes `[start, end]` of a stream that carries bytes `[plan.readStart, plan.readEnd]`,
 * hashing every check span as it goes. The chunk holding byte `end` is released only after every
 * check has passed, so a reader never receives the complete range unless all of it was verified. On a
 * mismatch or a short source, `onCorrupt` runs (drop the cache entry) and the stream errors: the
 * caller's `pipeline()` then destroys the response and the client sees a truncated body.
 */
export class VerifyingStream extends Transform {
  readonly #plan: VerifiedReadPlan
  readonly #start: number
  readonly #end: number
  readonly #onCorrupt: () => Promise<void>
  /** Offset of the next input byte. */
  #pos: number
  #check = 0
  #hash: Hash | undefined
  /** The final output chunk, released in `_flush` once every check has passed. */
  #held: Buffer | undefined

  constructor (plan: VerifiedReadPlan, range: { start: number, end: number }, onCorrupt: () => Promise<void>) {
    super()
    this.#plan = plan
    this.#start = range.start
    this.#end = range.end
    this.#onCorrupt = onCorrupt
    this.#pos = plan.readStart
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunkStart = this.#pos
    if (chunkStart + chunk.byteLength > this.#plan.readEnd + 1) {
      this.#corrupt(dfError('DF_ERR_SIZE_MISMATCH', 'cache read returned more bytes than asked for'), callback)
      return
    }
    const failed = this.#hashChunk(chunk)
    if (failed !== undefined) { this.#corrupt(failed, callback); return }
    // Only the part inside [start, end] goes out; the part past `end` was read to finish a piece hash.
    const from = Math.max(this.#start, chunkStart) - chunkStart
    const to = Math.min(this.#end + 1, this.#pos) - chunkStart
    if (to <= from) { callback(); return }
    const out = from === 0 && to === chunk.byteLength ? chunk : chunk.subarray(from, to)
    if (chunkStart + to === this.#end + 1) { this.#held = out; callback(); return }
    callback(null, out)
  }

  override _flush (callback: TransformCallback): void {
    if (this.#pos !== this.#plan.readEnd + 1 || this.#check < this.#plan.checks.length) {
      // Includes the empty blob: its single check is finished here, with no bytes hashed.
      const failed = this.#pos === this.#plan.readEnd + 1 ? this.#finishCheck() : dfError('DF_ERR_SIZE_MISMATCH', `cache data ended at byte ${this.#pos}, expected ${this.#plan.readEnd + 1}`)
      if (failed !== undefined) { this.#corrupt(failed, callback); return }
    }
    const held = this.#held
    this.#held = undefined
    callback(null, held)
  }

  /** Hashes `chunk` into the current check span(s); returns the error of a span that failed. */
  #hashChunk (chunk: Buffer): Error | undefined {
    let offset = 0
    while (offset < chunk.byteLength) {
      const check = this.#plan.checks[this.#check]
      if (check === undefined) { this.#pos += chunk.byteLength - offset; return undefined }
      const take = Math.min(chunk.byteLength - offset, check.end - this.#pos)
      this.#hash ??= createHash(parseDigest(check.digest).algorithm)
      this.#hash.update(take === chunk.byteLength ? chunk : chunk.subarray(offset, offset + take))
      offset += take
      this.#pos += take
      if (this.#pos === check.end) {
        const failed = this.#finishCheck()
        if (failed !== undefined) return failed
      }
    }
    return undefined
  }

  #finishCheck (): Error | undefined {
    const check = this.#plan.checks[this.#check]
    if (check === undefined) return undefined
    const hash = this.#hash ?? createHash(parseDigest(check.digest).algorithm)
    this.#hash = undefined
    this.#check++
    const actual = `${parseDigest(check.digest).algorithm}:${hash.digest('hex')}`
    if (actual === check.digest) return undefined
    return dfError(check.code, `cached bytes ${check.start}-${check.end - 1} hashed to ${actual}, expected ${check.digest}`)
  }

  #corrupt (err: Error, callback: TransformCallback): void {
    this.#held = undefined
    this.#onCorrupt().then(() => { callback(err) }, () => { callback(err) })
  }
}
