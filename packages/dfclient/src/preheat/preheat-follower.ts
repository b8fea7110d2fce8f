import type { Logger } from 'pino'
import { isDfError, type PreheatBlobResult, type PreheatFeedBlob, type PreheatFeedEntry } from '@damselfly/proto'
import type { PreheatFeed } from './feed-client.js'

export interface PreheatFollowerInit {
  peerId: string
  hostname: string
  /** Long-poll wait; below the API's 30 s cap. */
  waitMs?: number
  /** Retry delays after a failed poll: doubling from min to max. */
  retryMinMs?: number
  retryMaxMs?: number
  /** How long a preheated blob stays pinned in the cache; default `PREHEAT_PIN_MS`. */
  pinMs?: number
}

/**
 * The default pin: a day, the cache's default TTL. A preheat announces pulls to come (a rollout);
 * a day covers a rollout that waits for a maintenance window, after which the blob is an ordinary
 * cache entry again, evicted by LRU and TTL like any other.
 */
export const PREHEAT_PIN_MS = 24 * 60 * 60 * 1000

export interface PreheatFollowerComponents {
  feed: PreheatFeed
  /**
   * Puts one blob into this node's piece cache through the ordinary P2P download (the seed already
   * holds it, so no upstream is contacted); resolves once it is complete and verified.
   */
  fetchBlob: (blob: PreheatFeedBlob, signal: AbortSignal) => Promise<void>
  /**
   * Keeps a blob from eviction (quota or TTL) for `forMs`: a preheat is worth nothing if making room
   * for the next pull drops what it just fetched.
   */
  pin: (digest: string, forMs: number) => void
  logger: Logger
}

const REPORT_ATTEMPTS = 3

/**
 * Follows this peer's preheat feed on the supernode (`all_peers` preheats): long-polls it, pins and
 * fetches the blobs of each new entry one at a time (a preheat must not crowd out the pulls this node
 * serves), and reports per blob. A supernode that is down is retried with backoff; an entry whose report
 * could not be delivered is simply offered again and redone (its blobs are then cached: cheap).
 */
export class PreheatFollower {
  readonly #init: PreheatFollowerInit
  readonly #c: PreheatFollowerComponents
  readonly #stop = new AbortController()
  readonly #working = new Map<string, Promise<void>>()
  #loop: Promise<void> | undefined

  constructor (init: PreheatFollowerInit, components: PreheatFollowerComponents) {
    this.#init = init
    this.#c = components
  }

  /** Starts following in the background. */
  start (): void {
    this.#loop ??= this.#follow()
  }

  /** Stops polling and abandons entries in progress (unreported: the supernode offers them again). */
  async stop (): Promise<void> {
    this.#stop.abort()
    await this.#loop
    await Promise.allSettled([...this.#working.values()])
  }

  async #follow (): Promise<void> {
    const signal = this.#stop.signal
    const minMs = this.#init.retryMinMs ?? 1000
    let retryMs = minMs
    let since: number | undefined
    let following = false
    while (!signal.aborted) {
      try {
        // The first poll answers at once, so "following" is logged only once the supernode knows us.
        const reply = await this.#c.feed.poll(this.#init.peerId, {
          ...(since === undefined ? {} : { since }),
          waitMs: since === undefined ? 0 : this.#init.waitMs ?? 25_000,
          hostname: this.#init.hostname
        }, signal)
        if (!following) {
          following = true
          this.#c.logger.info('following the supernode preheat feed')
        }
        retryMs = minMs
        since = reply.version
        for (const entry of reply.preheats) {
          if (this.#working.has(entry.id)) continue
          const work = this.#handle(entry, signal).finally(() => { this.#working.delete(entry.id) })
          this.#working.set(entry.id, work)
        }
      } catch (err) {
        if (signal.aborted) break
        if (following) this.#c.logger.warn({ err: err instanceof Error ? err.message : String(err), retryMs }, 'preheat feed poll failed; retrying')
        following = false
        // A new supernode process restarts its versions: ask afresh.
        since = undefined
        await sleep(retryMs, signal)
        retryMs = Math.min(retryMs * 2, this.#init.retryMaxMs ?? 30_000)
      }
    }
  }

  async #handle (entry: PreheatFeedEntry, signal: AbortSignal): Promise<void> {
    const log = this.#c.logger.child({ preheatId: entry.id })
    log.info({ blobs: entry.blobs.length }, 'preheating blobs the supernode asked for')
    const results: PreheatBlobResult[] = []
    for (const blob of entry.blobs) {
      try {
        // Pinned first, so pieces already cached (or arriving) cannot go while the rest is fetched. A
        // failed fetch leaves its pin: the partial blob then waits, pinned, for the preheat to be run
        // again, and the pin lapses on its own.
        this.#c.pin(blob.digest, this.#init.pinMs ?? PREHEAT_PIN_MS)
        await this.#c.fetchBlob(blob, signal)
        results.push({ digest: blob.digest, ok: true })
      } catch (err) {
        if (signal.aborted) return
        const code = isDfError(err) ? err.code : 'DF_ERR_INTERNAL'
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 1024)
        log.warn({ digest: blob.digest, code, err: message }, 'preheat blob failed')
        results.push({ digest: blob.digest, ok: false, code, message })
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#c.feed.report(this.#init.peerId, entry.id, results, signal)
        log.info({ ok: results.filter(r => r.ok).length, failed: results.filter(r => !r.ok).length }, 'preheat reported')
        return
      } catch (err) {
        if (signal.aborted || attempt >= REPORT_ATTEMPTS) {
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not report preheat results; the supernode will offer the entry again')
          return
        }
        await sleep(1000 * attempt, signal)
      }
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
