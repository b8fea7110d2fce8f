import type { Logger } from 'pino'
import type { AnnounceRequest, AnnounceResponse } from '@damselfly/proto'
import type { SupernodeClient } from '../supernode/client.js'
import { isUnreachable } from '../supernode/task-owners.js'
import type { PieceCache } from '../storage/piece-cache.js'
import type { PieceReporter } from '../supernode/piece-reporter.js'

export interface AnnouncerInit {
  peerId: string
  addrs: () => string[]
  hostname: string
  version: string
  /** Retry delays after a failed announce: doubling from min to max. */
  retryMinMs?: number
  retryMaxMs?: number
  /** Least time between two holdings resyncs after evictions (see `forget`); default 10 s. */
  resyncMinIntervalMs?: number
}

/** Pieces staged (verified, readable, served) but not yet committed, per blob. */
export type StagedPieces = () => Array<{ digest: string, pieces: number[] }>

/** How the announcer tells the rest of the dfclient about its supernode (the ring's health). */
export interface AnnouncerHooks {
  /** The supernode acknowledged an announce or a heartbeat. */
  healthy?: (reply: AnnounceResponse) => void
  /** The supernode could not be reached. */
  unreachable?: (reason: string) => void
  /** Whether this supernode owns a task: only those tasks' held pieces are re-reported to it. */
  owns?: (digest: string) => boolean
}

/** Evictions that arrive together are resynced together, this long after the first. */
const RESYNC_DELAY_MS = 1000

/**
 * The peer lifecycle towards the supernode (docs/protocol.md "Peer lifecycle"): announce, heartbeat
 * every `heartbeatIntervalMs`, re-announce and re-report every held piece after a 404 (the supernode
 * restarted or expired us), leave on stop. A supernode that is down never blocks start: announce is
 * retried in the background with backoff.
 */
export class Announcer {
  readonly #init: AnnouncerInit
  readonly #client: SupernodeClient
  readonly #cache: PieceCache
  readonly #reporter: PieceReporter
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #staged: StagedPieces | undefined
  #announced: AnnounceResponse | undefined
  #retryMs: number
  #resyncTimer: NodeJS.Timeout | undefined
  #lastResync = 0
  #forgotten = 0
  #lastError: string | undefined
  readonly #hooks: AnnouncerHooks

  constructor (init: AnnouncerInit, components: { client: SupernodeClient, cache: PieceCache, reporter: PieceReporter, logger: Logger, staged?: StagedPieces, hooks?: AnnouncerHooks }) {
    this.#init = init
    this.#client = components.client
    this.#cache = components.cache
    this.#reporter = components.reporter
    this.#logger = components.logger
    this.#staged = components.staged
    this.#retryMs = init.retryMinMs ?? 1000
    this.#hooks = components.hooks ?? {}
  }

  /** The last successful announce reply, if any. */
  get announced (): AnnounceResponse | undefined { return this.#announced }

  /** Why the last announce failed, while not announced. */
  get lastError (): string | undefined { return this.#lastError }

  /** The supernode base URL the client is using. */
  get supernodeUrl (): string { return this.#client.url }

  /** Makes the first announce attempt; resolves whether or not it succeeded (see `announced`). */
  async start (): Promise<void> {
    await this.#announce()
  }

  async #announce (): Promise<void> {
    if (this.#stopped) return
    const request: AnnounceRequest = { peerId: this.#init.peerId, addrs: this.#init.addrs().slice(0, 16), hostname: this.#init.hostname, version: this.#init.version }
    try {
      this.#announced = await this.#client.announce(request)
      this.#lastError = undefined
      this.#retryMs = this.#init.retryMinMs ?? 1000
      this.#logger.info({ supernode: this.#client.url, heartbeatIntervalMs: this.#announced.heartbeatIntervalMs }, 'announced to supernode')
      this.#hooks.healthy?.(this.#announced)
      await this.#reportHoldings()
      this.#schedule(() => this.#heartbeat(), this.#announced.heartbeatIntervalMs)
    } catch (err) {
      this.#announced = undefined
      this.#lastError = err instanceof Error ? err.message : String(err)
      this.#hooks.unreachable?.(this.#lastError)
      this.#logger.warn({ supernode: this.#client.url, err: this.#lastError, retryMs: this.#retryMs }, 'announce to supernode failed; retrying in the background')
      const delay = this.#retryMs
      this.#retryMs = Math.min(this.#retryMs * 2, this.#init.retryMaxMs ?? 30_000)
      this.#schedule(() => this.#announce(), delay)
    }
  }

  async #heartbeat (): Promise<void> {
    if (this.#stopped) return
    try {
      const known = await this.#client.heartbeat(this.#init.peerId)
      if (!known) {
        this.#logger.info({ supernode: this.#client.url }, 'supernode forgot this peer; announcing again')
        await this.#announce()
        return
      }
      if (this.#announced !== undefined) this.#hooks.healthy?.(this.#announced)
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      this.#logger.warn({ supernode: this.#client.url, err: reason }, 'heartbeat failed')
      if (isUnreachable(err)) {
        // Down until an announce succeeds again (its tasks move to their next owner meanwhile).
        this.#hooks.unreachable?.(reason)
        this.#announced = undefined
        this.#lastError = reason
        this.#schedule(() => this.#announce(), this.#retryMs)
        return
      }
    }
    this.#schedule(() => this.#heartbeat(), this.#announced?.heartbeatIntervalMs ?? 5000)
  }

  async #reportHoldings (): Promise<void> {
    const owns = this.#hooks.owns ?? (() => true)
    const blobs = (await this.#cache.list()).filter(b => owns(b.digest))
    for (const b of blobs) this.#reporter.report(b.digest, [...b.pieces.keys()])
    // Staged pieces are served to peers too; a download in progress reports each only once.
    const staged = (this.#staged?.() ?? []).filter(s => owns(s.digest))
    for (const s of staged) this.#reporter.report(s.digest, s.pieces)
    if (blobs.length + staged.length > 0) {
      this.#logger.info({ blobs: blobs.length, staged: staged.length }, 're-reporting held pieces')
      await this.#reporter.flush()
    }
  }

  /**
   * This peer no longer holds these blobs (evicted from the cache, or dropped). The peer API has no
   * per-task "dropped" call, and a stale holding costs every peer that is sent here a failed fetch,
   * so the supernode is brought in line the way a restart would: leave (which clears this peer's
   * holdings), announce again and re-report what is still held or staged. Evictions that come
   * together share one resync, and resyncs are at least `resyncMinIntervalMs` apart.
   */
  forget (digests: readonly string[]): void {
    if (this.#stopped || digests.length === 0) return
    this.#forgotten += digests.length
    if (this.#resyncTimer !== undefined) return
    const delay = Math.max(RESYNC_DELAY_MS, this.#lastResync + (this.#init.resyncMinIntervalMs ?? 10_000) - Date.now())
    this.#resyncTimer = setTimeout(() => { this.#resyncTimer = undefined; void this.#resync() }, delay)
    this.#resyncTimer.unref()
  }

  async #resync (): Promise<void> {
    // Not announced: the next successful announce reports only what is held now anyway.
    if (this.#stopped || this.#announced === undefined) return
    this.#lastResync = Date.now()
    const forgotten = this.#forgotten
    this.#forgotten = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    try {
      await this.#client.leave(this.#init.peerId, AbortSignal.timeout(3000))
    } catch (err) {
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'leave before the holdings resync failed; announcing anyway')
    }
    this.#logger.info({ blobs: forgotten }, 'blobs left the cache; resyncing holdings with the supernode')
    await this.#announce()
  }

  #schedule (fn: () => Promise<void>, ms: number): void {
    if (this.#stopped) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#timer = undefined; void fn() }, ms)
  }

  /** Stops heartbeats and leaves the supernode (best effort, bounded). */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer)
    if (this.#announced === undefined) return
    try {
      await this.#client.leave(this.#init.peerId, AbortSignal.timeout(3000))
    } catch (err) {
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'leaving the supernode failed')
    }
  }
}
