import type { Logger } from 'pino'
import type { AnnounceRequest, AnnounceResponse } from '@damselfly/proto'
import type { SupernodeClient } from '../supernode/client.js'
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
}

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
  #announced: AnnounceResponse | undefined
  #retryMs: number

  constructor (init: AnnouncerInit, components: { client: SupernodeClient, cache: PieceCache, reporter: PieceReporter, logger: Logger }) {
    this.#init = init
    this.#client = components.client
    this.#cache = components.cache
    this.#reporter = components.reporter
    this.#logger = components.logger
    this.#retryMs = init.retryMinMs ?? 1000
  }

  /** The last successful announce reply, if any. */
  get announced (): AnnounceResponse | undefined { return this.#announced }

  /** Makes the first announce attempt; resolves whether or not it succeeded (see `announced`). */
  async start (): Promise<void> {
    await this.#announce()
  }

  async #announce (): Promise<void> {
    if (this.#stopped) return
    const request: AnnounceRequest = { peerId: this.#init.peerId, addrs: this.#init.addrs().slice(0, 16), hostname: this.#init.hostname, version: this.#init.version }
    try {
      this.#announced = await this.#client.announce(request)
      this.#retryMs = this.#init.retryMinMs ?? 1000
      this.#logger.info({ supernode: this.#client.url, heartbeatIntervalMs: this.#announced.heartbeatIntervalMs }, 'announced to supernode')
      await this.#reportHoldings()
      this.#schedule(() => this.#heartbeat(), this.#announced.heartbeatIntervalMs)
    } catch (err) {
      this.#announced = undefined
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err), retryMs: this.#retryMs }, 'announce to supernode failed; retrying in the background (pulls go upstream meanwhile)')
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
        this.#logger.info('supernode forgot this peer; announcing again')
        await this.#announce()
        return
      }
    } catch (err) {
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed')
    }
    this.#schedule(() => this.#heartbeat(), this.#announced?.heartbeatIntervalMs ?? 5000)
  }

  async #reportHoldings (): Promise<void> {
    const blobs = await this.#cache.list()
    for (const b of blobs) this.#reporter.report(b.digest, [...b.pieces.keys()])
    if (blobs.length > 0) {
      this.#logger.info({ blobs: blobs.length }, 're-reporting held pieces')
      await this.#reporter.flush()
    }
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
    if (this.#announced === undefined) return
    try {
      await this.#client.leave(this.#init.peerId, AbortSignal.timeout(3000))
    } catch (err) {
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'leaving the supernode failed')
    }
  }
}
