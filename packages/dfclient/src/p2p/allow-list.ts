import { request } from 'undici'
import type { Logger } from 'pino'
import { ALLOWED_PEERS_PATH, allowedPeersResponse } from '@damselfly/proto'
import { RefreshLoop } from '../refresh-loop.js'

export interface PeerAllowListInit {
  /**
   * Supernode base URLs: the lists of all that answer are merged (peers may use any of them). Read at
   * every refresh, so an array the caller updates in place (discovery) is followed.
   */
  urls: readonly string[]
  token?: string | undefined
  logger: Logger
  /** How often the lists are refreshed; default 5 s. */
  refreshMs?: number
  /** A peer stays allowed this long after it left every list; default 60 s (see below). */
  graceMs?: number
  now?: () => number
}

/** An unknown dialer triggers a refresh at most this often (a stranger cannot make us hammer the supernode). */
const MISS_REFRESH_MIN_MS = 1_000
/** Refreshes an unknown dialer may cause before it is refused (see `allows`). */
const MISS_REFRESHES = 2
const FETCH_TIMEOUT_MS = 5_000

/**
 * The peers this node's piece server may serve: the supernode's allow-list (`GET
 * /api/v1/allowed-peers`, proto `api/allowed-peers.ts`), refreshed every `refreshMs` and at once
 * (rate-limited) when an unknown dialer asks — a peer that has just announced is usually dialling us
 * within a second. A peer stays allowed for `graceMs` after it vanished from the lists: a supernode
 * restart empties its list until peers re-announce (heartbeats are 10 s apart), and serving a former
 * member for a minute more leaks nothing it could not read a minute ago. Until a first list arrives
 * nobody is allowed.
 */
export class PeerAllowList {
  readonly #init: PeerAllowListInit
  readonly #now: () => number
  /** peerId → last time a list named it. */
  readonly #seen = new Map<string, number>()
  readonly #versions = new Map<string, string>()
  readonly #lists = new Map<string, readonly string[]>()
  #refreshing: Promise<void> | undefined
  #lastRefresh = 0
  readonly #loop: RefreshLoop

  constructor (init: PeerAllowListInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
    this.#loop = new RefreshLoop(async () => { await this.refresh() }, init.refreshMs ?? 5_000)
  }

  /** Fetches the first lists, then refreshes them periodically. */
  async start (): Promise<void> {
    await this.refresh()
    this.#loop.start()
  }

  stop (): void {
    this.#loop.stop()
  }

  /** Whether `peerId` may be served now, from what is known (no I/O). */
  has (peerId: string): boolean {
    const seen = this.#seen.get(peerId)
    return seen !== undefined && this.#now() - seen <= (this.#init.graceMs ?? 60_000)
  }

  /**
   * `has`, after a refresh when the peer is unknown. Refreshes for unknown dialers start at most once
   * a second (callers wait for the next slot and share it), so strangers cannot make this node hammer
   * the supernode. Two refreshes at most: the supernode rebuilds its list at most once a second
   * (allowed-peers-routes.ts), so the first may return a list built just before the dialer
   * announced; the second starts a second later and so reads a list built after the dial began.
   * A newcomer waits at most about two seconds; a stranger is refused after as long.
   */
  async allows (peerId: string): Promise<boolean> {
    if (this.has(peerId)) return true
    // A refresh already under way may have asked before this peer announced: let it finish, then ask again.
    if (this.#refreshing !== undefined) {
      await this.#refreshing
      if (this.has(peerId)) return true
    }
    for (let attempt = 0; attempt < MISS_REFRESHES && !this.#loop.stopped; attempt++) {
      const wait = this.#lastRefresh + MISS_REFRESH_MIN_MS - this.#now()
      if (wait > 0) {
        await new Promise(resolve => setTimeout(resolve, wait))
        if (this.has(peerId)) return true
      }
      await this.refresh()
      if (this.has(peerId)) return true
    }
    return false
  }

  /** Fetches every supernode's list (coalesced: callers during a refresh share it). */
  async refresh (): Promise<void> {
    this.#refreshing ??= this.#fetchAll().finally(() => { this.#refreshing = undefined })
    await this.#refreshing
  }

  async #fetchAll (): Promise<void> {
    this.#lastRefresh = this.#now()
    const urls = [...this.#init.urls]
    for (const url of [...this.#lists.keys()]) if (!urls.includes(url)) { this.#lists.delete(url); this.#versions.delete(url) }
    await Promise.all(urls.map(async url => { await this.#fetch(url) }))
    const now = this.#now()
    for (const list of this.#lists.values()) for (const id of list) this.#seen.set(id, now)
    const grace = this.#init.graceMs ?? 60_000
    for (const [id, at] of this.#seen) if (now - at > grace) this.#seen.delete(id)
  }

  async #fetch (url: string): Promise<void> {
    const since = this.#versions.get(url)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.#init.token !== undefined) headers.authorization = `Bearer ${this.#init.token}`
    try {
      const res = await request(`${url}${ALLOWED_PEERS_PATH}${since === undefined ? '' : `?since=${since}`}`, { headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
      const reply = allowedPeersResponse.parse(JSON.parse(text))
      this.#versions.set(url, reply.version)
      if (reply.peers !== undefined) this.#lists.set(url, reply.peers)
    } catch (err) {
      // Its members are no longer refreshed from this supernode: they age out after the grace period.
      this.#lists.delete(url)
      this.#versions.delete(url)
      this.#init.logger.debug({ supernode: url, err: err instanceof Error ? err.message : String(err) }, 'allow-list refresh failed')
    }
  }
}
