import { Digester, dfError, layoutFor, parseDigest, pieceIndexAt, pieceRange, piecesWithin, type PieceLayout, type TaskInfo } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'
import { PieceScheduler } from './piece-scheduler.js'
import type { DownloadEvents, PieceFetcher, TaskDirectory, UpstreamRangeOpener } from './ports.js'
import type { SlowPieceLimits } from './slow-piece.js'

export interface BlobDownloadInit {
  digest: string
  /** Upstream blob URL the supernode fetches on a miss. */
  url: string
  authorization?: string
  selfPeerId: string
  /** Fetches at once, in 4 MiB units (default 4: four 4 MiB pieces, or one of 16 MiB). */
  concurrency?: number
  window?: number
  pollWaitMs?: number
  maxRounds?: number
  maxPollFailures?: number
  slowPiece?: SlowPieceLimits
  /** See PieceScheduler `starvedMs`. */
  starvedMs?: number
}

export interface BlobDownloadComponents {
  tasks: TaskDirectory
  fetcher: PieceFetcher
  cache: PieceCache
  /** Where bytes come from when P2P fails after some were sent. */
  upstream: UpstreamRangeOpener
  events?: DownloadEvents
}

/**
 * Defaults: 16 MiB in flight (4 pieces of 4 MiB, 2 of 8 MiB, 1 of 16 MiB or more: the budget is in
 * bytes, proto `piece-layout.ts`) within 64 pieces of the reader. Fetched pieces wait in the cache
 * file, not in RAM, so the download holds that many receive buffers plus 1 MiB read chunks whatever
 * the window; a wider window only stages more of the blob on disk ahead of the reader.
 *
 * Why 64 and not 8: in a herd every node reads the same blob in order, so a piece is wanted by all of
 * them as soon as it enters their windows, and it takes several rounds of copies (each a piece
 * transfer plus a report) to reach thousands of nodes. The window must hold enough pieces to keep
 * every downlink busy meanwhile. `npm run simulate` (1 GiB, 1 Gbit/s nodes, 10 Gbit/s upstream, the
 * real scheduler): with a window of 8, 1,000 nodes finish at 3.7× the physical bound; 16: 1.9×;
 * 32: 1.35×; 64: 1.22×. The scheduler's `ASSIGNMENT_WINDOW` must be the same number.
 */
const DEFAULTS = { concurrency: 4, window: 64, pollWaitMs: 10_000, maxRounds: 3, maxPollFailures: 3 }

/**
 * Registers a blob with the supernode and returns a handle that streams any byte range of it. Throws
 * (before any byte exists) when the supernode cannot register it: the caller then falls back to the
 * upstream. DF_ERR_UPSTREAM_REJECTED means the upstream refused the back-to-source fetch.
 */
export async function openBlobDownload (init: BlobDownloadInit, components: BlobDownloadComponents, signal: AbortSignal): Promise<BlobDownload> {
  const request = init.authorization === undefined ? { digest: init.digest, url: init.url } : { digest: init.digest, url: init.url, authorization: init.authorization }
  const task = await components.tasks.registerTask(request, signal)
  if (task.digest !== init.digest) throw dfError('DF_ERR_PROTOCOL', `supernode answered for ${task.digest}, asked for ${init.digest}`)
  const layout = layoutFor(task.size)
  if (layout.pieceSize !== task.pieceSize || layout.pieceCount !== task.pieceCount) {
    throw dfError('DF_ERR_PROTOCOL', `supernode layout ${task.pieceSize}×${task.pieceCount} differs from the piece-layout rule for ${task.size} bytes`)
  }
  return new BlobDownload(init, components, task, layout)
}

/** One registered blob. `read()` may be called once per client request (each with its own range). */
export class BlobDownload {
  readonly task: TaskInfo
  readonly layout: PieceLayout
  readonly #init: BlobDownloadInit
  readonly #c: BlobDownloadComponents

  constructor (init: BlobDownloadInit, components: BlobDownloadComponents, task: TaskInfo, layout: PieceLayout) {
    this.#init = init
    this.#c = components
    this.task = task
    this.layout = layout
  }

  /**
   * Yields bytes `[start, end]` (inclusive) in order, each piece verified against the seed's digest.
   * When P2P fails before the first byte, throws (the caller falls back to the upstream itself);
   * when it fails after some bytes, continues from the upstream at the current offset. When the range
   * is the whole blob, the blob digest is checked as bytes pass; on mismatch the cache entry is dropped
   * and the iterator throws DF_ERR_BLOB_DIGEST_MISMATCH after the last byte (so the caller must destroy
   * the response rather than end it).
   */
  async * read (range: { start: number, end: number }, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const { digest } = this.#init
    const layout = this.layout
    const whole = range.start === 0 && range.end === layout.size - 1
    const digester = whole || layout.size === 0 ? new Digester(parseDigest(digest).algorithm) : undefined
    let offset = range.start
    const end = range.end
    let p2pError: Error | undefined
    if (layout.size > 0 && end >= range.start) {
      const scheduler = new PieceScheduler({
        ...DEFAULTS,
        concurrency: piecesWithin(this.#init.concurrency ?? DEFAULTS.concurrency, layout.pieceSize),
        ...definedOnly({ window: this.#init.window, pollWaitMs: this.#init.pollWaitMs, maxRounds: this.#init.maxRounds, maxPollFailures: this.#init.maxPollFailures, starvedMs: this.#init.starvedMs }),
        ...(this.#init.slowPiece === undefined ? {} : { slowPiece: this.#init.slowPiece }),
        digest,
        layout,
        selfPeerId: this.#init.selfPeerId,
        first: pieceIndexAt(layout, range.start),
        last: pieceIndexAt(layout, end)
      }, this.#c, signal)
      try {
        await scheduler.start()
        const lastPiece = pieceIndexAt(layout, end)
        for (let i = pieceIndexAt(layout, range.start); i <= lastPiece; i++) {
          const r = pieceRange(layout, i)
          const from = Math.max(offset, r.start)
          const to = Math.min(end + 1, r.end)
          let chunks: AsyncIterable<Uint8Array>
          try {
            const bytes = await scheduler.piece(i)
            // In the cache (the usual case): streamed from the file (page cache) in 1 MiB reads, so a
            // piece fetched ahead of the reader costs no RAM while it waits for its turn.
            chunks = bytes === undefined ? this.#c.cache.readPieceBytes(digest, i, { start: from, end: to }) : once(bytes.subarray(from - r.start, to - r.start))
          } catch (err) {
            if (signal.aborted) throw err
            p2pError = err instanceof Error ? err : new Error(String(err))
            break
          }
          // Before the last byte: let the commits behind the reader finish, so a complete response
          // leaves the blob cached and reported.
          if (i === lastPiece) await scheduler.settled()
          const iterator = chunks[Symbol.asyncIterator]()
          try {
            for (;;) {
              let next: IteratorResult<Uint8Array>
              try {
                next = await iterator.next()
              } catch (err) {
                if (signal.aborted) throw err
                p2pError = err instanceof Error ? err : new Error(String(err))
                break
              }
              if (next.done === true) break
              const slice = next.value
              digester?.update(slice)
              offset += slice.byteLength
              yield slice
            }
          } finally {
            // The reader left early (client gone): close the file the piece streams from.
            if (p2pError === undefined) await iterator.return?.()
          }
          if (p2pError !== undefined) break
        }
      } finally {
        scheduler.stop()
      }
    }
    if (p2pError !== undefined) {
      // Nothing sent yet: let the caller fall back cleanly (and label the response as upstream).
      if (offset === range.start) throw p2pError
      this.#c.events?.upstreamContinuation?.({ offset, error: p2pError })
      const body = await this.#c.upstream({ start: offset, end }, signal)
      for await (const chunk of body) {
        if (offset + chunk.byteLength > end + 1) throw dfError('DF_ERR_SIZE_MISMATCH', `upstream sent more than the ${end + 1 - range.start} bytes of ${digest} asked for`)
        digester?.update(chunk)
        offset += chunk.byteLength
        yield chunk
      }
      if (offset !== end + 1) throw dfError('DF_ERR_SIZE_MISMATCH', `upstream ended ${digest} at byte ${offset} of ${end + 1}`)
    }
    if (digester !== undefined) {
      const actual = digester.digest()
      if (actual !== digest) {
        await this.#c.cache.drop(digest)
        throw dfError('DF_ERR_BLOB_DIGEST_MISMATCH', `blob ${digest} hashed to ${actual}`)
      }
    }
  }
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

function definedOnly<T extends Record<string, number | undefined>> (o: T): Partial<Record<keyof T, number>> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, number>>
}
