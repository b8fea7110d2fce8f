import { createReadStream } from 'node:fs'
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import { dfError, parseDigest, pieceIndexAt, pieceRange, type PieceLayout } from '@damselfly/proto'
import { hashRange } from './data-file.js'
import type { CachedBlob } from './piece-cache.js'
import { planVerifiedRead, VerifyingStream } from './verified-read.js'

/**
 * Read size for streaming a blob from disk. The default 64 KiB costs a threadpool round trip, a
 * Buffer and a hash/socket call per 64 KiB (4,096 of each for a 256 MiB layer); 1 MiB cuts that
 * 16-fold while keeping what one read holds in memory small (about three chunks per response:
 * one being read, one being hashed, one in the socket).
 */
const READ_CHUNK = 1024 * 1024

/**
 * Streams bytes `[start, end]` of a blob's data file, checked ahead piece by piece and again as they
 * stream (the PieceCache `readRange` contract). `drop` runs on a mismatch; `onMissingFile` when the
 * data file is gone.
 */
export function verifiedFileRead (path: string, blob: CachedBlob, start: number, end: number, o: { signal?: AbortSignal | undefined, drop: () => Promise<void>, onMissingFile: () => void }): Readable {
  const plan = planVerifiedRead(blob, start, end)
  const verifier = new VerifyingStream(plan, { start, end }, o.drop)
  const ahead = new VerifyAheadGate({
    layout: blob.layout,
    pieces: blob.pieces,
    readStart: plan.readStart,
    hashPiece: async (i) => {
      const r = pieceRange(blob.layout, i)
      return await hashRange(path, r.start, r.end, parseDigest(blob.pieces.get(i) ?? blob.digest).algorithm)
    },
    onCorrupt: o.drop
  })
  const file = createReadStream(path, { start: plan.readStart, end: plan.readEnd, highWaterMark: READ_CHUNK, ...(o.signal === undefined ? {} : { signal: o.signal }) })
  // Errors reach the consumer through `verifier`, which pipeline() destroys with them.
  pipeline(file, ahead, verifier, (err) => {
    if ((err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') o.onMissingFile()
  })
  return verifier
}

/** Hashes piece `index` as it is stored now; resolves to `<algorithm>:<hex>`. */
export type PieceHasher = (index: number) => Promise<string>

export interface VerifyAheadInit {
  layout: PieceLayout
  /** Index → the piece digest recorded when the piece was written. */
  pieces: ReadonlyMap<number, string>
  /** Blob offset of the first input byte. */
  readStart: number
  hashPiece: PieceHasher
  /** Runs before the stream errors on a mismatch (drop the cache entry). */
  onCorrupt: () => Promise<void>
}

/**
 * Lets bytes of a cached piece pass only once that whole piece, as stored, hashed to its recorded
 * digest: a corrupt piece is caught before any of its bytes reach the client. The stream then errors
 * with DF_ERR_PIECE_DIGEST_MISMATCH (`details.offset` = the piece's first byte), so the reader can
 * fetch the rest of the blob elsewhere and still send only good bytes. Pieces are checked one at a
 * time as the read reaches them, into one small reused buffer (no whole piece in memory).
 *
 * The bytes that then pass are hashed again downstream (VerifyingStream): the piece could change on
 * disk between the two reads, and that second check still keeps such a response from completing.
 */
export class VerifyAheadGate extends Transform {
  readonly #init: VerifyAheadInit
  #pos: number
  /** Highest piece index verified so far (pieces arrive in order). */
  #verified: number

  constructor (init: VerifyAheadInit) {
    super()
    this.#init = init
    this.#pos = init.readStart
    this.#verified = pieceIndexAt(init.layout, init.readStart) - 1
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const { layout } = this.#init
    const last = pieceIndexAt(layout, Math.min(layout.size - 1, this.#pos + chunk.byteLength - 1))
    this.#pos += chunk.byteLength
    if (last <= this.#verified || chunk.byteLength === 0) { callback(null, chunk); return }
    this.#verifyThrough(last).then(() => { callback(null, chunk) }, (err: Error) => {
      this.#init.onCorrupt().then(() => { callback(err) }, () => { callback(err) })
    })
  }

  async #verifyThrough (last: number): Promise<void> {
    for (let i = this.#verified + 1; i <= last; i++) {
      const expected = this.#init.pieces.get(i)
      if (expected === undefined) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${i} is not held`)
      const actual = await this.#init.hashPiece(i)
      if (actual !== expected) {
        const offset = pieceRange(this.#init.layout, i).start
        throw dfError('DF_ERR_PIECE_DIGEST_MISMATCH', `cached piece ${i} hashed to ${actual}, expected ${expected}; dropped before any of its bytes were sent`, { details: { index: i, offset } })
      }
      this.#verified = i
    }
  }
}
