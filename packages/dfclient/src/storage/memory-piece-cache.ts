import { pipeline, Readable } from 'node:stream'
import { dfError, pieceRange, sha256Of, type PieceLayout } from '@damselfly/proto'
import type { CachedBlob, PieceBytesOptions, PieceCache } from './piece-cache.js'
import { planVerifiedRead, VerifyingStream } from './verified-read.js'
import { VerifyAheadGate } from './verify-ahead.js'

const PIECE_READ_CHUNK = 1024 * 1024

/** In-memory PieceCache for tests and fakes: same contract, no durability. */
export class MemoryPieceCache implements PieceCache {
  readonly #blobs = new Map<string, { layout: PieceLayout, pieces: Map<number, string>, staged: Set<number>, data: Uint8Array }>()

  async get (digest: string): Promise<CachedBlob | undefined> {
    const b = this.#blobs.get(digest)
    return b === undefined ? undefined : { digest, layout: b.layout, pieces: new Map(b.pieces) }
  }

  async writePiece (digest: string, layout: PieceLayout, index: number, pieceDigest: string, bytes: Uint8Array): Promise<void> {
    if (this.#blobs.get(digest)?.pieces.has(index) === true) return
    await this.stagePiece(digest, layout, index, bytes)
    await this.commitPiece(digest, layout, index, pieceDigest)
  }

  async stagePiece (digest: string, layout: PieceLayout, index: number, bytes: Uint8Array): Promise<void> {
    const r = pieceRange(layout, index)
    if (bytes.byteLength !== r.length) throw new RangeError(`piece ${index} of ${digest}: ${bytes.byteLength} bytes, expected ${r.length}`)
    let b = this.#blobs.get(digest)
    if (b === undefined) { b = { layout, pieces: new Map(), staged: new Set(), data: new Uint8Array(layout.size) }; this.#blobs.set(digest, b) }
    if (b.pieces.has(index)) return
    b.data.set(bytes, r.start)
    b.staged.add(index)
  }

  async commitPiece (digest: string, _layout: PieceLayout, index: number, pieceDigest: string): Promise<void> {
    const b = this.#blobs.get(digest)
    if (b?.pieces.has(index) === true) return
    if (b?.staged.has(index) !== true) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest} is not staged`)
    b.staged.delete(index)
    b.pieces.set(index, pieceDigest)
  }

  layoutOf (digest: string): PieceLayout | undefined {
    return this.#blobs.get(digest)?.layout
  }

  hasPieceBytes (digest: string, index: number): boolean {
    const b = this.#blobs.get(digest)
    return b !== undefined && (b.pieces.has(index) || b.staged.has(index))
  }

  async * readPieceBytes (digest: string, index: number, options: PieceBytesOptions = {}): AsyncGenerator<Uint8Array> {
    const b = this.#blobs.get(digest)
    if (b === undefined || !(b.pieces.has(index) || (options.heldOnly !== true && b.staged.has(index)))) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest} is not held`)
    const piece = pieceRange(b.layout, index)
    const start = options.start ?? piece.start
    const end = options.end ?? piece.end
    const chunkSize = options.chunkSize ?? PIECE_READ_CHUNK
    if (start < piece.start || end > piece.end || start > end) throw new RangeError(`bytes ${start}-${end} are not inside piece ${index} of ${digest}`)
    for (let pos = start; pos < end; pos += chunkSize) {
      await Promise.resolve()
      if (this.#blobs.get(digest) !== b) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} was dropped while piece ${index} was read`)
      yield b.data.slice(pos, Math.min(end, pos + chunkSize))
    }
  }

  async readPiece (digest: string, index: number): Promise<Uint8Array | undefined> {
    const b = this.#blobs.get(digest)
    if (b?.pieces.has(index) !== true) return undefined
    const r = pieceRange(b.layout, index)
    return b.data.slice(r.start, r.end)
  }

  readRange (digest: string, start: number, end: number): Readable {
    const b = this.#blobs.get(digest)
    if (b === undefined) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} is not held`)
    const plan = planVerifiedRead({ digest, layout: b.layout, pieces: b.pieces }, start, end)
    const drop = async (): Promise<void> => { await this.drop(digest) }
    const verifier = new VerifyingStream(plan, { start, end }, drop)
    const ahead = new VerifyAheadGate({
      layout: b.layout,
      pieces: b.pieces,
      readStart: plan.readStart,
      hashPiece: async (i) => { const r = pieceRange(b.layout, i); return sha256Of(b.data.subarray(r.start, r.end)) },
      onCorrupt: drop
    })
    // Piece-sized chunks, as a file read would deliver them (the gate checks each piece on arrival).
    const chunks: Buffer[] = []
    for (let pos = plan.readStart; pos <= plan.readEnd; pos += PIECE_READ_CHUNK) chunks.push(Buffer.from(b.data.buffer, b.data.byteOffset + pos, Math.min(PIECE_READ_CHUNK, plan.readEnd + 1 - pos)))
    // Errors reach the consumer through `verifier`, which pipeline() destroys with them.
    pipeline(Readable.from(chunks), ahead, verifier, () => {})
    return verifier
  }

  async drop (digest: string): Promise<void> { this.#blobs.delete(digest) }

  async list (): Promise<CachedBlob[]> {
    return [...this.#blobs.entries()].filter(([, b]) => b.pieces.size > 0).map(([digest, b]) => ({ digest, layout: b.layout, pieces: new Map(b.pieces) }))
  }

  async close (): Promise<void> {}
}
