import { dfError, isDfError, pieceRange, type PieceAvailability, type PieceLayout, type PieceSource } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'
import type { DownloadEvents, PieceFetcher, TaskDirectory } from './ports.js'

export interface PieceSchedulerInit {
  digest: string
  layout: PieceLayout
  selfPeerId: string
  /** Inclusive piece index range this reader needs. */
  first: number
  last: number
  /** Pieces fetched at once (the brief's "bounded concurrency"). */
  concurrency: number
  /** How far ahead of the reader's cursor fetches may run, in pieces (bounds memory). */
  window: number
  pollWaitMs: number
  /** Rounds of "every source failed" a piece may go through before P2P is given up. */
  maxRounds: number
  /** Consecutive failed availability polls tolerated before P2P is given up. */
  maxPollFailures: number
}

export interface PieceSchedulerComponents {
  tasks: TaskDirectory
  fetcher: PieceFetcher
  cache: PieceCache
  events?: DownloadEvents
}

interface Deferred { resolve: (b: Uint8Array) => void, reject: (e: Error) => void }

/** Ranks sources: never ourselves, peers in the supernode's order, the seed last. */
export function rankSources (sources: readonly PieceSource[], selfPeerId: string): PieceSource[] {
  const others = sources.filter(s => s.peerId !== selfPeerId)
  return [...others.filter(s => !s.seed), ...others.filter(s => s.seed)]
}

/**
 * Drives the pieces of one blob range: long-polls availability, fetches up to `concurrency` missing
 * pieces inside a window ahead of the reader, writes each verified piece to the cache, reports it, and
 * hands pieces to the reader in whatever order they arrive (the reader asks for them in order).
 * All state changes happen synchronously between awaits; `stop()` aborts everything in flight.
 */
export class PieceScheduler {
  readonly #init: PieceSchedulerInit
  readonly #c: PieceSchedulerComponents
  readonly #abort = new AbortController()
  readonly #avail = new Map<number, PieceAvailability>()
  readonly #ready = new Map<number, Uint8Array>()
  readonly #waiters = new Map<number, Deferred>()
  readonly #inflight = new Set<number>()
  readonly #rounds = new Map<number, number>()
  readonly #notBefore = new Map<number, number>()
  readonly #pending = new Set<number>()
  readonly #held = new Set<number>()
  /** Cache writes still running: pieces are handed to the reader first, persisted and reported after. */
  readonly #writes = new Set<Promise<void>>()
  #cursor: number
  #version = 0
  #error: Error | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (init: PieceSchedulerInit, components: PieceSchedulerComponents, signal: AbortSignal) {
    this.#init = init
    this.#c = components
    this.#cursor = init.first
    if (signal.aborted) this.#abort.abort(signal.reason)
    else signal.addEventListener('abort', () => { this.stop() }, { once: true })
  }

  /** Loads what the cache already holds and starts polling. */
  async start (): Promise<void> {
    const cached = await this.#c.cache.get(this.#init.digest)
    for (let i = this.#init.first; i <= this.#init.last; i++) {
      if (cached?.pieces.has(i) === true) this.#held.add(i)
      else this.#pending.add(i)
    }
    if (this.#pending.size > 0) void this.#pollLoop()
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#abort.abort(new Error('piece scheduler stopped'))
    this.#fail(dfError('DF_ERR_SHUTTING_DOWN', 'download stopped'))
  }

  /**
   * Resolves once every cache write started so far has finished (written and reported, or failed).
   * The reader awaits this before its last byte, so a completed response means a cached blob.
   */
  async settled (): Promise<void> {
    while (this.#writes.size > 0) await Promise.all([...this.#writes])
  }

  /** The verified bytes of piece `index`; the reader calls this in ascending order. */
  async piece (index: number): Promise<Uint8Array> {
    this.#cursor = index
    if (this.#held.has(index)) {
      const bytes = await this.#c.cache.readPiece(this.#init.digest, index)
      if (bytes !== undefined) { this.#pump(); return bytes }
      this.#held.delete(index) // vanished from the cache (dropped concurrently): fetch it
      this.#pending.add(index)
      if (this.#pending.size === 1) void this.#pollLoop()
    }
    const ready = this.#ready.get(index)
    if (ready !== undefined) {
      this.#ready.delete(index)
      this.#pump()
      return ready
    }
    if (this.#error !== undefined) throw this.#error
    const promise = new Promise<Uint8Array>((resolve, reject) => { this.#waiters.set(index, { resolve, reject }) })
    this.#pump()
    return await promise
  }

  async #pollLoop (): Promise<void> {
    const signal = this.#abort.signal
    let failures = 0
    while (!signal.aborted && this.#error === undefined && this.#pending.size > 0) {
      try {
        const res = await this.#c.tasks.pollPieces(this.#init.digest, this.#version, this.#version === 0 ? 0 : this.#init.pollWaitMs, signal)
        failures = 0
        this.#version = res.version
        for (const p of res.pieces) this.#avail.set(p.index, p)
        if (res.task.state === 'failed') {
          this.#fail(dfError('DF_ERR_TASK_FAILED', `task ${this.#init.digest} failed at the supernode`))
          return
        }
        this.#pump()
      } catch (err) {
        if (signal.aborted) return
        failures++
        if (failures >= this.#init.maxPollFailures) {
          this.#fail(asError(err))
          return
        }
        await sleep(250 * failures, signal)
      }
    }
  }

  #pump (): void {
    if (this.#error !== undefined || this.#abort.signal.aborted) return
    const now = Date.now()
    let earliest = Infinity
    const end = Math.min(this.#init.last, this.#cursor + this.#init.window - 1)
    // Writes behind the network (a slow disk) hold piece buffers too: bound them with the window.
    const slots = Math.min(this.#init.concurrency, this.#init.window - this.#writes.size)
    for (let i = this.#cursor; i <= end && this.#inflight.size < slots; i++) {
      if (!this.#pending.has(i) || this.#inflight.has(i)) continue
      const a = this.#avail.get(i)
      if (a === undefined || rankSources(a.sources, this.#init.selfPeerId).length === 0) continue
      const nb = this.#notBefore.get(i) ?? 0
      if (nb > now) { earliest = Math.min(earliest, nb); continue }
      void this.#fetch(i, a)
    }
    if (earliest !== Infinity && this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; this.#pump() }, earliest - now)
    }
  }

  async #fetch (index: number, a: PieceAvailability): Promise<void> {
    const { digest, layout, selfPeerId } = this.#init
    const signal = this.#abort.signal
    this.#inflight.add(index)
    const expected = { size: pieceRange(layout, index).length, digest: a.digest }
    let lastError: Error = dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest}: no source`)
    try {
      for (const source of rankSources(a.sources, selfPeerId)) {
        let bytes: Uint8Array
        try {
          bytes = await this.#c.fetcher.fetchPiece(source, { taskId: digest, index }, expected, signal)
        } catch (err) {
          if (signal.aborted) return
          lastError = asError(err)
          const info = { index, peerId: source.peerId, error: lastError }
          // Only a SHA-256 mismatch is a verify failure; a short or broken stream is a source failure.
          if (isDfError(err) && err.code === 'DF_ERR_PIECE_DIGEST_MISMATCH') this.#c.events?.verifyFailure?.(info)
          else this.#c.events?.sourceFailure?.(info)
          continue
        }
        this.#c.events?.pieceReceived?.(bytes.byteLength, source.seed ? 'supernode' : 'peer')
        // The reader gets the piece now; the durable write (data sync, sidecar) runs behind it so the
        // disk's latency is not added to every piece. It is reported only once it is durable.
        this.#deliver(index, bytes)
        this.#persist(index, a.digest, bytes)
        return
      }
      const rounds = (this.#rounds.get(index) ?? 0) + 1
      this.#rounds.set(index, rounds)
      if (rounds >= this.#init.maxRounds) {
        this.#fail(dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest}: every source failed ${rounds} times: ${lastError.message}`, { cause: lastError }))
        return
      }
      this.#notBefore.set(index, Date.now() + 200 * rounds)
    } finally {
      this.#inflight.delete(index)
      this.#pump()
    }
  }

  #persist (index: number, pieceDigest: string, bytes: Uint8Array): void {
    const { digest, layout } = this.#init
    const write = (async () => {
      try {
        await this.#c.cache.writePiece(digest, layout, index, pieceDigest, bytes)
        this.#c.tasks.reportPieces(digest, [index])
      } catch {
        // A full or failing disk must not fail the pull: the verified bytes still go to the client.
      }
    })()
    this.#writes.add(write)
    void write.finally(() => {
      this.#writes.delete(write)
      this.#pump()
    })
  }

  #deliver (index: number, bytes: Uint8Array): void {
    this.#pending.delete(index)
    const w = this.#waiters.get(index)
    if (w !== undefined) {
      this.#waiters.delete(index)
      w.resolve(bytes)
    } else {
      this.#ready.set(index, bytes)
    }
  }

  #fail (err: Error): void {
    if (this.#error !== undefined) return
    this.#error = err
    for (const w of this.#waiters.values()) w.reject(err)
    this.#waiters.clear()
    this.#ready.clear()
  }
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const onAbort = (): void => { clearTimeout(t); resolve() }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
