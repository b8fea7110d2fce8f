/**
 * Which peer holds which piece of which task, with the reverse index that lets a departing peer's
 * holdings go without scanning every task. Soft state on purpose: a dfclient re-reports every piece it
 * holds after re-announcing, so nothing here is persisted. Plain bookkeeping: liveness and quarantine
 * are the swarm's business.
 */
export class Holdings {
  /** taskId → piece index → holder peer ids. */
  readonly #holders = new Map<string, Map<number, Set<string>>>()
  /** peerId → taskIds it reported. */
  readonly #tasksOf = new Map<string, Set<string>>()

  add (taskId: string, peerId: string, indices: readonly number[]): void {
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
  }

  holders (taskId: string, index: number): ReadonlySet<string> {
    return this.#holders.get(taskId)?.get(index) ?? EMPTY
  }

  /** Tasks the peer reported pieces of. */
  tasksOf (peerId: string): ReadonlySet<string> {
    return this.#tasksOf.get(peerId) ?? EMPTY
  }

  /** Forgets one holding (its copy turned out bad). */
  dropPiece (taskId: string, index: number, peerId: string): void {
    const byIndex = this.#holders.get(taskId)
    const set = byIndex?.get(index)
    if (byIndex === undefined || set === undefined) return
    set.delete(peerId)
    if (set.size === 0) byIndex.delete(index)
  }

  /** Forgets everything a peer holds; returns the tasks whose holders changed. */
  dropPeer (peerId: string): string[] {
    const tasks = [...this.#tasksOf.get(peerId) ?? []]
    this.#tasksOf.delete(peerId)
    for (const taskId of tasks) {
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
    for (const tasks of this.#tasksOf.values()) tasks.delete(taskId)
  }
}

const EMPTY: ReadonlySet<string> = new Set()
