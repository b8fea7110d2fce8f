import { PeerEntry } from './peer-entry.js'
import type { PeerRecord } from './peer-state.js'

export interface MembershipInit {
  peerTtlMs: number
  maxUploadsPerPeer: number
}

/**
 * Which peers are members of the swarm (see `peer-state.ts`): the announced peers, when each was last
 * heard from, and which of them have an upload slot free. Each member is one `PeerEntry`, the handle
 * the rest of the scheduler passes around. Dropping a member's holdings and in-flight work is the
 * swarm's business, not this table's.
 */
export class Membership {
  readonly #init: MembershipInit
  /**
   * Announced peers in `lastSeen` order: every announce and heartbeat moves its peer to the end, so
   * the peers silent past their TTL are always a prefix (found without walking every peer).
   */
  readonly #peers = new Map<string, PeerEntry>()
  readonly #free = new Set<PeerEntry>()
  /** 1 at the slot of each peer in `#free` (what planning tests holders with). */
  #freeBySlot: Uint8Array = new Uint8Array(0)
  /** 1 at the slot of each peer that may have failed recently (`mayHaveFailed`). */
  #failedBySlot: Uint8Array = new Uint8Array(0)
  /** Slots of departed members, reused first (slots stay dense: holder sets index by them). */
  readonly #spareSlots: number[] = []
  #nextSlot = 0

  constructor (init: MembershipInit) {
    this.#init = init
  }

  /** Live peers with an upload slot free, kept in step with the upload ledger (planning searches it). */
  get free (): ReadonlySet<PeerEntry> { return this.#free }

  /**
   * Membership of `free` by slot: 1 at `freeBySlot[p.slot]` when `p` is free. Read it, never change
   * it; ask again after an announce (it grows).
   */
  get freeBySlot (): Uint8Array { return this.#freeBySlot }

  /**
   * 0 at the slot of each member no transfer failure was counted against since it announced (nor
   * inside the rate window before): its failures are 0, known without reading its load. Read it,
   * never change it; ask again after an announce (it grows).
   */
  get failedBySlot (): Uint8Array { return this.#failedBySlot }

  /** A failure was counted against the peer (as a source): it may be failing from now on. */
  mayHaveFailed (peerId: string): void {
    const p = this.#peers.get(peerId)
    if (p !== undefined) this.#failedBySlot[p.slot] = 1
  }

  /** Announced, whether live or silent. */
  has (peerId: string): boolean {
    return this.#peers.has(peerId)
  }

  /** The record, whether live or silent. */
  get (peerId: string): PeerRecord | undefined {
    return this.#peers.get(peerId)?.record
  }

  /** The member's entry, whether live or silent. */
  entry (peerId: string): PeerEntry | undefined {
    return this.#peers.get(peerId)
  }

  liveCount (now: number): number {
    let n = 0
    for (const p of this.#peers.values()) if (now - p.record.lastSeen <= this.#init.peerTtlMs) n++
    return n
  }

  /** Copies, so read-only views cannot alter the records. */
  liveCopies (now: number): PeerRecord[] {
    return [...this.#peers.values()].filter(p => now - p.record.lastSeen <= this.#init.peerTtlMs).map(p => ({ ...p.record, addrs: [...p.record.addrs] }))
  }

  /** Replaces the peer's record (its `lastSeen` is the announce); a member keeps its entry. */
  announced (record: PeerRecord): void {
    let entry = this.#peers.get(record.peerId)
    if (entry === undefined) entry = new PeerEntry(record, this.#newSlot())
    else entry.record = record
    // Deleted first so that it moves to the end of the lastSeen order.
    this.#peers.delete(record.peerId)
    this.#peers.set(record.peerId, entry)
  }

  /** `silent` means the peer went past its TTL before this heartbeat; its record is left for the caller to drop. */
  heartbeat (peerId: string, now: number): 'live' | 'silent' | 'unknown' {
    const p = this.#peers.get(peerId)
    if (p === undefined) return 'unknown'
    if (now - p.record.lastSeen > this.#init.peerTtlMs) return 'silent'
    p.record.lastSeen = now
    this.#peers.delete(peerId)
    this.#peers.set(peerId, p)
    return 'live'
  }

  /** Drops the record; false when there was none. Its holdings must be gone already (its slot is reused). */
  remove (peerId: string): boolean {
    const p = this.#peers.get(peerId)
    if (p === undefined) return false
    this.#peers.delete(peerId)
    this.#free.delete(p)
    this.#freeBySlot[p.slot] = 0
    this.#spareSlots.push(p.slot)
    return true
  }

  /** The prefix of `#peers` silent past the TTL (see `#peers`). */
  * silent (now: number): Generator<PeerEntry> {
    for (const p of this.#peers.values()) {
      if (now - p.record.lastSeen <= this.#init.peerTtlMs) return
      yield p
    }
  }

  trackFree (peerId: string, inFlight: number): void {
    const p = this.#peers.get(peerId)
    if (p === undefined) return
    const free = inFlight < this.#init.maxUploadsPerPeer
    this.#freeBySlot[p.slot] = free ? 1 : 0
    if (free) this.#free.add(p)
    else this.#free.delete(p)
  }

  #newSlot (): number {
    const slot = this.#spareSlots.pop() ?? this.#nextSlot++
    if (slot >= this.#freeBySlot.length) {
      const n = Math.max(slot + 1, this.#freeBySlot.length * 2, 64)
      this.#freeBySlot = grown(this.#freeBySlot, n)
      this.#failedBySlot = grown(this.#failedBySlot, n)
    }
    this.#failedBySlot[slot] = 0
    return slot
  }
}

function grown (a: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n)
  out.set(a)
  return out
}
