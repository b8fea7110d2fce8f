import type { PeerRecord } from './peer-state.js'

export interface MembershipInit {
  peerTtlMs: number
  maxUploadsPerPeer: number
}

/**
 * Which peers are members of the swarm (see `peer-state.ts`): the announced peers, when each was last
 * heard from, and which of them have an upload slot free. Dropping a member's holdings and in-flight
 * work is the swarm's business, not this table's.
 */
export class Membership {
  readonly #init: MembershipInit
  /**
   * Announced peers in `lastSeen` order: every announce and heartbeat moves its peer to the end, so
   * the peers silent past their TTL are always a prefix (found without walking every peer).
   */
  readonly #peers = new Map<string, PeerRecord>()
  readonly #free = new Set<string>()

  constructor (init: MembershipInit) {
    this.#init = init
  }

  /** Live peers with an upload slot free, kept in step with the upload ledger (planning searches it). */
  get free (): ReadonlySet<string> { return this.#free }

  /** Announced, whether live or silent. */
  has (peerId: string): boolean {
    return this.#peers.has(peerId)
  }

  /** The record, whether live or silent. */
  get (peerId: string): PeerRecord | undefined {
    return this.#peers.get(peerId)
  }

  liveCount (now: number): number {
    let n = 0
    for (const p of this.#peers.values()) if (now - p.lastSeen <= this.#init.peerTtlMs) n++
    return n
  }

  /** Copies, so read-only views cannot alter the records. */
  liveCopies (now: number): PeerRecord[] {
    return [...this.#peers.values()].filter(p => now - p.lastSeen <= this.#init.peerTtlMs).map(p => ({ ...p, addrs: [...p.addrs] }))
  }

  /** Replaces the peer's record (its `lastSeen` is the announce). */
  announced (record: PeerRecord): void {
    // Deleted first so that it moves to the end of the lastSeen order.
    this.#peers.delete(record.peerId)
    this.#peers.set(record.peerId, record)
  }

  /** `silent` means the peer went past its TTL before this heartbeat; its record is left for the caller to drop. */
  heartbeat (peerId: string, now: number): 'live' | 'silent' | 'unknown' {
    const p = this.#peers.get(peerId)
    if (p === undefined) return 'unknown'
    if (now - p.lastSeen > this.#init.peerTtlMs) return 'silent'
    p.lastSeen = now
    this.#peers.delete(peerId)
    this.#peers.set(peerId, p)
    return 'live'
  }

  /** Drops the record; false when there was none. */
  remove (peerId: string): boolean {
    const existed = this.#peers.delete(peerId)
    this.#free.delete(peerId)
    return existed
  }

  /** The prefix of `#peers` silent past the TTL (see `#peers`). */
  * silent (now: number): Generator<string> {
    for (const p of this.#peers.values()) {
      if (now - p.lastSeen <= this.#init.peerTtlMs) return
      yield p.peerId
    }
  }

  trackFree (peerId: string, inFlight: number): void {
    if (this.#peers.has(peerId) && inFlight < this.#init.maxUploadsPerPeer) this.#free.add(peerId)
    else this.#free.delete(peerId)
  }
}
