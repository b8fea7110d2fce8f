import type { PreheatFeedBlob, PreheatFeedEntry, PreheatFeedResponse } from '@damselfly/proto'
import type { PeerBlobResult } from './job.js'

/**
 * A dfclient that follows its preheat feed. Only followers are asked to preheat: a peer that never
 * polls (an older dfclient) could never answer, and counting it would fail every `all_peers` job.
 */
export interface Follower {
  peerId: string
  hostname: string
  ip: string
}

/**
 * A follower is live while a poll of its is open, or for this long after its last poll ended.
 * Why 60 s: dfclients re-poll at once after each answer (the longest wait is 30 s) and back off at
 * most 30 s after errors, so a live one is never silent this long.
 */
export const FOLLOWER_TTL_MS = 60_000

interface FollowerState extends Follower {
  lastSeen: number
  polling: number
}

interface PeerQueue {
  entries: Map<string, PreheatFeedEntry>
  version: number
  waiters: Set<() => void>
}

export interface PeerFeedInit {
  now: () => number
  /** Called with each report for an entry the feed still listed; then the entry is gone. */
  onReport: (id: string, peerId: string, results: readonly PeerBlobResult[]) => void
  followerTtlMs?: number
}

/**
 * The per-peer preheat feeds (`GET /api/v1/peers/:peerId/preheats`): which jobs want which peer to
 * fetch which blobs. Soft state, like peers themselves: after a restart the jobs re-assign what is
 * still outstanding from their persisted records, and dfclients simply poll again.
 */
export class PeerFeed {
  readonly #init: PeerFeedInit
  readonly #ttl: number
  readonly #followers = new Map<string, FollowerState>()
  readonly #queues = new Map<string, PeerQueue>()

  constructor (init: PeerFeedInit) {
    this.#init = init
    this.#ttl = init.followerTtlMs ?? FOLLOWER_TTL_MS
  }

  /**
   * One poll of `peerId`'s feed; records it as a live follower. With `since` and `waitMs`, waits
   * until the feed changes past `since`, the wait runs out, or `signal` aborts.
   */
  async poll (peerId: string, who: { hostname: string, ip: string }, wait: { since?: number | undefined, waitMs?: number | undefined }, signal: AbortSignal): Promise<PreheatFeedResponse> {
    const follower = this.#touch(peerId, who)
    follower.polling++
    try {
      const queue = this.#queue(peerId)
      if (wait.since !== undefined && wait.waitMs !== undefined && wait.waitMs > 0 && queue.version <= wait.since && !signal.aborted) {
        await new Promise<void>(resolve => {
          const done = (): void => {
            clearTimeout(timer)
            signal.removeEventListener('abort', done)
            queue.waiters.delete(done)
            resolve()
          }
          const timer = setTimeout(done, wait.waitMs)
          signal.addEventListener('abort', done, { once: true })
          queue.waiters.add(done)
        })
      }
      return { version: queue.version, preheats: [...queue.entries.values()] }
    } finally {
      follower.polling--
      follower.lastSeen = this.#init.now()
    }
  }

  /** Adds entry `id` (one job's blobs) to each peer's feed. */
  assign (id: string, peerIds: readonly string[], blobs: readonly PreheatFeedBlob[]): void {
    for (const peerId of peerIds) {
      const queue = this.#queue(peerId)
      queue.entries.set(id, { id, blobs: [...blobs] })
      this.#bump(queue)
    }
  }

  /** Drops entry `id` from every feed (its job ended). */
  withdraw (id: string): void {
    for (const queue of this.#queues.values()) {
      if (queue.entries.delete(id)) this.#bump(queue)
    }
  }

  /** A peer's results for entry `id`; ignored when the feed no longer lists it (already reported, job over). */
  report (peerId: string, id: string, results: readonly PeerBlobResult[]): void {
    const queue = this.#queues.get(peerId)
    if (queue?.entries.delete(id) !== true) return
    this.#bump(queue)
    this.#init.onReport(id, peerId, results)
  }

  /** Followers live right now. */
  liveFollowers (): Follower[] {
    return [...this.#followers.values()].filter(f => this.#live(f)).map(({ peerId, hostname, ip }) => ({ peerId, hostname, ip }))
  }

  isLive (peerId: string): boolean {
    const f = this.#followers.get(peerId)
    return f !== undefined && this.#live(f)
  }

  /** Ends every open poll (shutdown). */
  wakeAll (): void {
    for (const queue of this.#queues.values()) for (const w of [...queue.waiters]) w()
  }

  #live (f: FollowerState): boolean {
    return f.polling > 0 || this.#init.now() - f.lastSeen <= this.#ttl
  }

  #touch (peerId: string, who: { hostname: string, ip: string }): FollowerState {
    const now = this.#init.now()
    let f = this.#followers.get(peerId)
    if (f === undefined) {
      f = { peerId, hostname: who.hostname, ip: who.ip, lastSeen: now, polling: 0 }
      this.#followers.set(peerId, f)
    } else {
      f.hostname = who.hostname
      f.ip = who.ip
      f.lastSeen = now
    }
    // Followers gone for good are forgotten here rather than by a timer of their own.
    for (const [id, other] of this.#followers) {
      if (!this.#live(other) && (this.#queues.get(id)?.entries.size ?? 0) === 0) {
        this.#followers.delete(id)
        this.#queues.delete(id)
      }
    }
    return f
  }

  #queue (peerId: string): PeerQueue {
    let q = this.#queues.get(peerId)
    // Versions start at the clock (like the task board's): a poll with a `since` from before a
    // supernode restart sees a larger version and is answered at once.
    if (q === undefined) this.#queues.set(peerId, q = { entries: new Map(), version: this.#init.now(), waiters: new Set() })
    return q
  }

  #bump (queue: PeerQueue): void {
    queue.version = Math.max(queue.version + 1, this.#init.now())
    for (const w of [...queue.waiters]) w()
  }
}
