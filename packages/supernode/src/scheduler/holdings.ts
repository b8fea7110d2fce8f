/**
 * The holders of one piece: O(1) add, remove and membership, indexed access, and a rotating cursor
 * from which bounded planning samples holders (`plan-pieces.ts`), so that a piece held by thousands
 * of peers is never walked whole per request and successive requesters are shown different holders.
 * Order is arbitrary (removal swaps the last holder into the gap).
 */
export class HolderSet implements Iterable<string> {
  readonly #ids: string[] = []
  readonly #pos = new Map<string, number>()
  /** Where the next rotating sample starts; kept below `size` (or 0). */
  #cursor = 0

  get size (): number { return this.#ids.length }

  has (peerId: string): boolean { return this.#pos.has(peerId) }

  /** The holder at position `i` (0 ≤ i < size). */
  at (i: number): string { return this.#ids[i] as string }

  get cursor (): number { return this.#cursor }

  /** Moves the sampling cursor (wrapped into range). */
  set cursor (c: number) { this.#cursor = this.#ids.length === 0 ? 0 : c % this.#ids.length }

  add (peerId: string): void {
    if (this.#pos.has(peerId)) return
    this.#pos.set(peerId, this.#ids.length)
    this.#ids.push(peerId)
  }

  delete (peerId: string): boolean {
    const i = this.#pos.get(peerId)
    if (i === undefined) return false
    const last = this.#ids.pop() as string
    this.#pos.delete(peerId)
    if (last !== peerId) {
      this.#ids[i] = last
      this.#pos.set(last, i)
    }
    if (this.#cursor >= this.#ids.length) this.#cursor = 0
    return true
  }

  [Symbol.iterator] (): Iterator<string> { return this.#ids[Symbol.iterator]() }
}

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

  add (taskId: string, peerId: string, indices: readonly number[]): void {
    let byIndex = this.#holders.get(taskId)
    if (byIndex === undefined) this.#holders.set(taskId, byIndex = new Map())
    let byPeer = this.#held.get(taskId)
    if (byPeer === undefined) this.#held.set(taskId, byPeer = new Map())
    let bits = byPeer.get(peerId) ?? new Uint8Array(0)
    for (const index of indices) {
      let set = byIndex.get(index)
      if (set === undefined) byIndex.set(index, set = new HolderSet())
      set.add(peerId)
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
  dropPiece (taskId: string, index: number, peerId: string): void {
    const byIndex = this.#holders.get(taskId)
    const set = byIndex?.get(index)
    if (byIndex === undefined || set === undefined) return
    set.delete(peerId)
    if (set.size === 0) byIndex.delete(index)
    const bits = this.#held.get(taskId)?.get(peerId)
    if (bits !== undefined && index < bits.length) bits[index] = 0
  }

  /** Forgets everything a peer holds; returns the tasks whose holders changed. */
  dropPeer (peerId: string): string[] {
    const tasks = [...this.#tasksOf.get(peerId) ?? []]
    this.#tasksOf.delete(peerId)
    for (const taskId of tasks) {
      const byPeer = this.#held.get(taskId)
      byPeer?.delete(peerId)
      if (byPeer?.size === 0) this.#held.delete(taskId)
      const byIndex = this.#holders.get(taskId)
      if (byIndex === undefined) continue
      for (const [index, set] of byIndex) {
        set.delete(peerId)
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
