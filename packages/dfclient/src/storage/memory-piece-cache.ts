import { pipeline, Readable } from 'node:stream'
import { dfError, pieceRange, type PieceLayout } from '@damselfly/proto'
import type { CachedBlob, PieceCache } from './piece-cache.js'
import { planVerifiedRead, VerifyingStream } from './verified-read.js'

/** In-memory PieceCache for tests and fakes: same contract, no durability. */
export class MemoryPieceCache implements PieceCache {
  readonly #blobs = new Map<string, { layout: PieceLayout, pieces: Map<number, string>, data: Uint8Array }>()

  async get (digest: string): Promise<CachedBlob | undefined> {
    const b = this.#blobs.get(digest)
    return b === undefined ? undefined : { digest, layout: b.layout, pieces: new Map(b.pieces) }
  }

  async writePiece (digest: string, layout: PieceLayout, index: number, pieceDigest: string, bytes: Uint8Array): Promise<void> {
    let b = this.#blobs.get(digest)
    if (b === undefined) { b = { layout, pieces: new Map(), data: new Uint8Array(layout.size) }; this.#blobs.set(digest, b) }
    if (b.pieces.has(index)) return
    b.data.set(bytes, pieceRange(layout, index).start)
    b.pieces.set(index, pieceDigest)
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
    const verifier = new VerifyingStream(plan, { start, end }, async () => { await this.drop(digest) })
    // Errors reach the consumer through `verifier`, which pipeline() destroys with them.
    pipeline(Readable.from([Buffer.from(b.data.buffer, b.data.byteOffset + plan.readStart, plan.readEnd + 1 - plan.readStart)]), verifier, () => {})
    return verifier
  }

  async drop (digest: string): Promise<void> { this.#blobs.delete(digest) }

  async list (): Promise<CachedBlob[]> {
    return [...this.#blobs.entries()].map(([digest, b]) => ({ digest, layout: b.layout, pieces: new Map(b.pieces) }))
  }

  async close (): Promise<void> {}
}
