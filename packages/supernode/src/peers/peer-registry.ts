/**
 * Live peers and the pieces they hold, in memory only. This is soft state on purpose: a dfclient
 * heartbeats every 10 s and, on a 404 (supernode restarted or its entry expired), announces again and
 * re-reports every piece it holds. Persisting it would only let holders that died during a supernode
 * outage be handed out after the restart.
 */

export const HEARTBEAT_INTERVAL_MS = 10_000
/** 3.5 heartbeats: one lost or late heartbeat never drops a live peer. */
export const PEER_TTL_MS = 35_000

export interface PeerEntry {
  peerId: string
  addrs: string[]
  hostname: string
  version?: string
  lastSeen: number
}

export interface PeerRegistryInit {
  ttlMs?: number
  now?: () => number
  /** Called with every task whose holders changed (to bump its version and wake pollers). */
  onHoldingsChanged?: (taskId: string) => void
  /** Called once for every peer that leaves or expires. */
  onPeerRemoved?: (peerId: string) => void
}

export class PeerRegistry {
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #onHoldingsChanged: (taskId: string) => void
  readonly #onPeerRemoved: (peerId: string) => void
  readonly #peers = new Map<string, PeerEntry>()
  /** taskId → piece index → holder peer ids. */
  readonly #holders = new Map<string, Map<number, Set<string>>>()
  /** peerId → taskIds it reported, so removal touches only its own tasks. */
  readonly #tasksOf = new Map<string, Set<string>>()

  constructor (init: PeerRegistryInit = {}) {
    this.#ttlMs = init.ttlMs ?? PEER_TTL_MS
    this.#now = init.now ?? Date.now
    this.#onHoldingsChanged = init.onHoldingsChanged ?? (() => {})
    this.#onPeerRemoved = init.onPeerRemoved ?? (() => {})
  }

  get ttlMs (): number { return this.#ttlMs }
  get size (): number { return this.#peers.size }

  /** Adds or refreshes a peer (announce is idempotent; holdings survive a re-announce). */
  announce (peer: Omit<PeerEntry, 'lastSeen'>): PeerEntry {
    const entry: PeerEntry = { ...peer, addrs: [...peer.addrs], lastSeen: this.#now() }
    this.#peers.set(peer.peerId, entry)
    return entry
  }

  /** Refreshes a peer's TTL; false when the peer is unknown or already expired. */
  heartbeat (peerId: string): boolean {
    const entry = this.get(peerId)
    if (entry === undefined) return false
    entry.lastSeen = this.#now()
    return true
  }

  /** The peer if it is alive (an expired peer not yet swept counts as gone). */
  get (peerId: string): PeerEntry | undefined {
    const entry = this.#peers.get(peerId)
    if (entry === undefined) return undefined
    if (this.#now() - entry.lastSeen > this.#ttlMs) {
      this.remove(peerId)
      return undefined
    }
    return entry
  }

  /** Drops a peer with all its holdings. */
  remove (peerId: string): boolean {
    const existed = this.#peers.delete(peerId)
    if (existed) this.#onPeerRemoved(peerId)
    const tasks = this.#tasksOf.get(peerId)
    this.#tasksOf.delete(peerId)
    for (const taskId of tasks ?? []) {
      const byIndex = this.#holders.get(taskId)
      if (byIndex === undefined) continue
      for (const [index, set] of byIndex) {
        set.delete(peerId)
        if (set.size === 0) byIndex.delete(index)
      }
      if (byIndex.size === 0) this.#holders.delete(taskId)
      this.#onHoldingsChanged(taskId)
    }
    return existed
  }

  /** Removes every peer silent for longer than the TTL; returns their ids. */
  sweep (): string[] {
    const cutoff = this.#now() - this.#ttlMs
    const expired = [...this.#peers.values()].filter(p => p.lastSeen < cutoff).map(p => p.peerId)
    for (const peerId of expired) this.remove(peerId)
    return expired
  }

  /** Records that a live peer holds (verified) pieces of a task. */
  addHoldings (peerId: string, taskId: string, indices: readonly number[]): void {
    let byIndex = this.#holders.get(taskId)
    if (byIndex === undefined) this.#holders.set(taskId, byIndex = new Map())
    for (const index of indices) {
      let set = byIndex.get(index)
      if (set === undefined) byIndex.set(index, set = new Set())
      set.add(peerId)
    }
    let tasks = this.#tasksOf.get(peerId)
    if (tasks === undefined) this.#tasksOf.set(peerId, tasks = new Set())
    tasks.add(taskId)
    this.#onHoldingsChanged(taskId)
  }

  /** Forgets every holder of a task (its data turned out bad). */
  dropTask (taskId: string): void {
    this.#holders.delete(taskId)
    for (const tasks of this.#tasksOf.values()) tasks.delete(taskId)
  }

  /** Alive peers holding piece `index` of a task. */
  holders (taskId: string, index: number): PeerEntry[] {
    const set = this.#holders.get(taskId)?.get(index)
    if (set === undefined) return []
    const out: PeerEntry[] = []
    for (const peerId of set) {
      const p = this.get(peerId)
      if (p !== undefined) out.push(p)
    }
    return out
  }
}
