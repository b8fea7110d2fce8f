import type { PeerEntry } from './peer-entry.js'

/**
 * The holders of one piece: O(1) add and membership, indexed access, and a rotating cursor from which
 * bounded planning samples holders (`plan-pieces.ts`), so that a piece held by thousands of peers is
 * never walked whole per request and successive requesters are shown different holders. Order is
 * arbitrary (removal swaps the last holder into the gap).
 *
 * Holders are kept with their slots (`PeerEntry.slot`) in a typed array, so planning tests a holder by
 * slot without reading its entry. Membership of a set past `SMALL_SET` holders is a bit per slot:
 * planning asks "does this peer hold the piece?" hundreds of times per poll, and at 10,000 peers a
 * lookup in a map of thousands of holders was a cache miss each time (the bits of a piece at 10,000
 * peers are 1.25 KB). A small set, the common case for the many blobs few nodes hold, scans its
 * slots instead and costs no more than its holders. Removal (a departing peer, a bad piece: rare)
 * finds the holder by scanning the slots.
 */
export class HolderSet implements Iterable<PeerEntry> {
  readonly #peers: PeerEntry[] = []
  /** The slots of `#peers`, position by position. */
  #slots = new Int32Array(0)
  /** Bit `slot` set for each holder once the set outgrew `SMALL_SET` (words past the end: none). */
  #bits: Uint32Array | undefined
  /** Where the next rotating sample starts; kept below `size` (or 0). */
  #cursor = 0

  get size (): number { return this.#peers.length }

  has (peer: PeerEntry): boolean {
    const bits = this.#bits
    const slot = peer.slot
    if (bits === undefined) return this.#find(slot) >= 0
    const word = slot >>> 5
    return word < bits.length && ((bits[word] as number) & (1 << (slot & 31))) !== 0
  }

  /** The holder at position `i` (0 ≤ i < size). */
  at (i: number): PeerEntry { return this.#peers[i] as PeerEntry }

  /** `at(i).slot`. */
  slotAt (i: number): number { return this.#slots[i] as number }

  get cursor (): number { return this.#cursor }

  /** Moves the sampling cursor (wrapped into range). */
  set cursor (c: number) { this.#cursor = this.#peers.length === 0 ? 0 : c % this.#peers.length }

  add (peer: PeerEntry): void {
    if (this.has(peer)) return
    const i = this.#peers.length
    if (i >= this.#slots.length) {
      const slots = new Int32Array(Math.max(8, i * 2))
      slots.set(this.#slots)
      this.#slots = slots
    }
    this.#peers.push(peer)
    this.#slots[i] = peer.slot
    if (this.#bits !== undefined) this.#setBit(peer.slot, true)
    else if (this.#peers.length > SMALL_SET) for (const p of this.#peers) this.#setBit(p.slot, true)
  }

  delete (peer: PeerEntry): boolean {
    const i = this.#find(peer.slot)
    if (i < 0) return false
    if (this.#bits !== undefined) this.#setBit(peer.slot, false)
    const last = this.#peers.pop() as PeerEntry
    if (last !== peer) {
      this.#peers[i] = last
      this.#slots[i] = last.slot
    }
    if (this.#cursor >= this.#peers.length) this.#cursor = 0
    return true
  }

  [Symbol.iterator] (): Iterator<PeerEntry> { return this.#peers[Symbol.iterator]() }

  /** The position of the holder in `slot`, or -1. */
  #find (slot: number): number {
    const slots = this.#slots
    for (let i = 0, n = this.#peers.length; i < n; i++) if (slots[i] === slot) return i
    return -1
  }

  #setBit (slot: number, on: boolean): void {
    const word = slot >>> 5
    let bits = this.#bits ?? new Uint32Array(0)
    if (word >= bits.length) {
      if (!on) return
      const grown = new Uint32Array(Math.max(word + 1, bits.length * 2))
      grown.set(bits)
      bits = grown
    }
    this.#bits = bits
    bits[word] = on ? (bits[word] as number) | (1 << (slot & 31)) : (bits[word] as number) & ~(1 << (slot & 31))
  }
}

/** Holders up to which a set tests membership by scanning its slots rather than keeping bits. */
const SMALL_SET = 16

/**
 * Which peer holds which piece of which task, with the reverse index that lets a departing peer's
 * holdings go without scanning every task. Soft state on purpose: a dfclient re-reports every piece it
 * holds after re-announcing, so nothing here is persisted. Plain bookkeeping: liveness and quarantine
 * are the swarm's business.
 */
export class Holdings {
  /** taskId → piece index → holders. */
  readonly #holders = new Map<string, Map<number, HolderSet>>()
  /** peerId → taskIds it reported. */
  readonly #tasksOf = new Map<string, Set<string>>()
  /** taskId → peerId → 1 at each piece index it holds (what a poll asks of every piece in a window). */
  readonly #held = new Map<string, Map<string, Uint8Array>>()

  add (taskId: string, peer: PeerEntry, indices: readonly number[]): void {
    const peerId = peer.id
    let byIndex = this.#holders.get(taskId)
    if (byIndex === undefined) this.#holders.set(taskId, byIndex = new Map())
    let byPeer = this.#held.get(taskId)
    if (byPeer === undefined) this.#held.set(taskId, byPeer = new Map())
    let bits = byPeer.get(peerId) ?? new Uint8Array(0)
    for (const index of indices) {
      let set = byIndex.get(index)
      if (set === undefined) byIndex.set(index, set = new HolderSet())
      set.add(peer)
      if (index >= bits.length) {
        const grown = new Uint8Array(Math.max(index + 1, bits.length * 2))
        grown.set(bits)
        bits = grown
      }
      bits[index] = 1
    }
    byPeer.set(peerId, bits)
    let tasks = this.#tasksOf.get(peerId)
    if (tasks === undefined) this.#tasksOf.set(peerId, tasks = new Set())
    tasks.add(taskId)
  }

  holders (taskId: string, index: number): HolderSet {
    return this.#holders.get(taskId)?.get(index) ?? EMPTY
  }

  /** A task's holders by piece, for callers looking at many pieces of one task (pieces without holders: `EMPTY`). */
  task (taskId: string): (index: number) => HolderSet {
    const byIndex = this.#holders.get(taskId)
    return byIndex === undefined ? () => EMPTY : index => byIndex.get(index) ?? EMPTY
  }

  /** Whether `peerId` holds each piece of the task: `pieces(i) === true` (one lookup for many pieces). */
  heldBy (taskId: string, peerId: string): (index: number) => boolean {
    const bits = this.#held.get(taskId)?.get(peerId)
    return bits === undefined ? () => false : index => bits[index] === 1
  }

  /** Tasks the peer reported pieces of. */
  tasksOf (peerId: string): ReadonlySet<string> {
    return this.#tasksOf.get(peerId) ?? NO_TASKS
  }

  /** Forgets one holding (its copy turned out bad). */
  dropPiece (taskId: string, index: number, peer: PeerEntry): void {
    const peerId = peer.id
    const byIndex = this.#holders.get(taskId)
    const set = byIndex?.get(index)
    if (byIndex === undefined || set === undefined) return
    set.delete(peer)
    if (set.size === 0) byIndex.delete(index)
    const bits = this.#held.get(taskId)?.get(peerId)
    if (bits !== undefined && index < bits.length) bits[index] = 0
  }

  /** Forgets everything a peer holds; returns the tasks whose holders changed. */
  dropPeer (peer: PeerEntry): string[] {
    const peerId = peer.id
    const tasks = [...this.#tasksOf.get(peerId) ?? []]
    this.#tasksOf.delete(peerId)
    for (const taskId of tasks) {
      const byPeer = this.#held.get(taskId)
      byPeer?.delete(peerId)
      if (byPeer?.size === 0) this.#held.delete(taskId)
      const byIndex = this.#holders.get(taskId)
      if (byIndex === undefined) continue
      for (const [index, set] of byIndex) {
        set.delete(peer)
        if (set.size === 0) byIndex.delete(index)
      }
      if (byIndex.size === 0) this.#holders.delete(taskId)
    }
    return tasks
  }

  /** Forgets every holder of a task. */
  dropTask (taskId: string): void {
    this.#holders.delete(taskId)
    this.#held.delete(taskId)
    for (const tasks of this.#tasksOf.values()) tasks.delete(taskId)
  }
}

/** Shared and never added to: `holders()` of an unknown piece. */
const EMPTY = new HolderSet()
const NO_TASKS: ReadonlySet<string> = new Set()
