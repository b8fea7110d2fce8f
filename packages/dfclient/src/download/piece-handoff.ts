import type { PieceLayout } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'
import type { TaskDirectory } from './ports.js'

/**
 * Where the reader finds a piece: `undefined` means "in the cache" (staged or held; stream it with
 * `cache.readPieceBytes`), bytes mean the cache could not take it and the verified bytes are here.
 */
export type PieceLocation = Uint8Array | undefined

interface Deferred { resolve: (b: PieceLocation) => void, reject: (e: Error) => void }

export interface PieceHandoffInit {
  digest: string
  layout: PieceLayout
  cache: PieceCache
  tasks: TaskDirectory
  /** The download's: once aborted, a piece that finishes staging is not handed over or reported. */
  signal: AbortSignal
  /** Called when a staged (or kept) piece no longer needs fetching, before the reader learns of it. */
  onFetched: (index: number) => void
}

/**
 * How a verified piece reaches the reader: staged in the cache file, from where the reader streams it
 * (page cache), or kept in RAM when the cache cannot take it; and the reader's wait for a piece that
 * is not there yet. Commits (making staged pieces durable) run behind the reader.
 */
export class PieceHandoff {
  readonly #init: PieceHandoffInit
  /** Verified pieces the cache could not stage, kept for the reader (a failing disk must not fail a pull). */
  readonly #memory = new Map<number, Uint8Array>()
  /** Pieces the reader can stream from the cache. */
  readonly #inCache = new Set<number>()
  readonly #waiters = new Map<number, Deferred>()
  /** Commits still running: pieces are streamed first, made durable and reported after. */
  readonly #commits = new Set<Promise<void>>()

  constructor (init: PieceHandoffInit) {
    this.#init = init
  }

  /** Whether the reader can have piece `index` now (see `take`). */
  ready (index: number): boolean {
    return this.#inCache.has(index) || this.#memory.has(index)
  }

  /** Where a ready piece is; bytes kept in RAM are handed over once and forgotten. */
  take (index: number): PieceLocation {
    if (this.#inCache.has(index)) return undefined
    const bytes = this.#memory.get(index)
    this.#memory.delete(index)
    return bytes
  }

  /** Settles when the piece is handed over, or is rejected by `reject`/`rejectAll`. */
  wait (index: number): Promise<PieceLocation> {
    return new Promise<PieceLocation>((resolve, reject) => { this.#waiters.set(index, { resolve, reject }) })
  }

  waiting (index: number): boolean {
    return this.#waiters.has(index)
  }

  reject (index: number, err: Error): void {
    const w = this.#waiters.get(index)
    if (w === undefined) return
    this.#waiters.delete(index)
    w.reject(err)
  }

  /** Rejects every wait but those for the pieces `spare` keeps (they may still land). */
  rejectAll (err: Error, spare: (index: number) => boolean): void {
    for (const [index, w] of [...this.#waiters]) {
      if (spare(index)) continue
      this.#waiters.delete(index)
      w.reject(err)
    }
  }

  /** Found in the cache when the download starts; nobody waits for it yet. */
  alreadyCached (index: number): void {
    this.#inCache.add(index)
  }

  /** The piece is in the cache (staged by us or by another download of the same blob). */
  readable (index: number): void {
    this.#inCache.add(index)
    const w = this.#waiters.get(index)
    if (w !== undefined) {
      this.#waiters.delete(index)
      w.resolve(undefined)
    }
  }

  /** Frees the RAM of pieces nobody will read (the download stopped). */
  dropMemory (): void {
    this.#memory.clear()
  }

  /**
   * Writes a verified piece to the cache file and makes it readable there; its commit (data flush,
   * metadata) and report run behind the reader. Returns whether `bytes` may be reused; when the cache
   * cannot take the piece, the reader gets these bytes instead.
   */
  async stage (index: number, pieceDigest: string, bytes: Uint8Array): Promise<boolean> {
    const { digest, layout, cache, tasks, signal } = this.#init
    try {
      await cache.stagePiece(digest, layout, index, bytes)
    } catch {
      if (signal.aborted) return false
      // A full or failing disk must not fail the pull: the verified bytes still go to the client.
      this.#init.onFetched(index)
      this.#deliver(index, bytes)
      return false
    }
    if (signal.aborted) return true
    this.#init.onFetched(index)
    this.readable(index)
    // Reported as soon as it is staged: the bytes are verified and readable from the file, which is
    // all a peer needs (it verifies again). Waiting for the commit's flush would keep a cold herd on
    // the seed for a flush time per piece. Durability only matters for this node's own restart.
    tasks.reportPieces(digest, [index])
    const commit = (async () => {
      try {
        await cache.commitPiece(digest, layout, index, pieceDigest)
      } catch {
        // Not durable: after a restart this node re-reports only committed pieces; the client and
        // any peer already got verified bytes.
      }
    })()
    this.#commits.add(commit)
    void commit.finally(() => { this.#commits.delete(commit) })
    return true
  }

  /** Resolves once every commit started so far has finished (durable and reported, or failed). */
  async settled (): Promise<void> {
    while (this.#commits.size > 0) await Promise.all([...this.#commits])
  }

  #deliver (index: number, bytes: Uint8Array): void {
    const w = this.#waiters.get(index)
    if (w !== undefined) {
      this.#waiters.delete(index)
      w.resolve(bytes)
    } else {
      this.#memory.set(index, bytes)
    }
  }
}
