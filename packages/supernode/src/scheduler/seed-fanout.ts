/**
 * Bookkeeping for the seed's fan-out rule (see `rank-sources.ts`): which requesters are fetching a
 * piece from the seed right now (claims), and since when a requester has been told "no source yet"
 * for a piece (waits). Plain bookkeeping with times passed in; the swarm owns the rule.
 */

/** taskId → piece index → requester → time until which the entry counts. */
type ByPiece = Map<string, Map<number, Map<string, number>>>

function entries (m: ByPiece, taskId: string, index: number, create: boolean): Map<string, number> | undefined {
  let byIndex = m.get(taskId)
  if (byIndex === undefined) {
    if (!create) return undefined
    m.set(taskId, byIndex = new Map())
  }
  let byRequester = byIndex.get(index)
  if (byRequester === undefined && create) byIndex.set(index, byRequester = new Map())
  return byRequester
}

function remove (m: ByPiece, taskId: string, index: number, requester: string): boolean {
  const byIndex = m.get(taskId)
  const byRequester = byIndex?.get(index)
  if (byIndex === undefined || byRequester === undefined || !byRequester.delete(requester)) return false
  if (byRequester.size === 0) byIndex.delete(index)
  if (byIndex.size === 0) m.delete(taskId)
  return true
}

/** Drops every entry of `requester`; returns the tasks it had entries in. */
function removeRequester (m: ByPiece, requester: string): string[] {
  const tasks: string[] = []
  for (const [taskId, byIndex] of m) {
    let had = false
    for (const [index, byRequester] of byIndex) {
      if (byRequester.delete(requester)) had = true
      if (byRequester.size === 0) byIndex.delete(index)
    }
    if (byIndex.size === 0) m.delete(taskId)
    if (had) tasks.push(taskId)
  }
  return tasks
}

/** Seed uploads claimed per piece: one entry per requester, counting until its expiry. */
export class SeedClaims {
  readonly #claims: ByPiece = new Map()

  /** Records (or renews) `requester`'s claim on a seed upload of the piece, counting until `until`. */
  set (taskId: string, index: number, requester: string, until: number): void {
    entries(this.#claims, taskId, index, true)!.set(requester, until)
  }

  /** Ends a claim; returns whether it was live at `now`. */
  end (taskId: string, index: number, requester: string, now: number): boolean {
    const until = entries(this.#claims, taskId, index, false)?.get(requester)
    return remove(this.#claims, taskId, index, requester) && until !== undefined && until > now
  }

  /** Shortens a live claim to end by `until` (it never lengthens one); false when there is none. */
  shorten (taskId: string, index: number, requester: string, until: number, now: number): boolean {
    const m = entries(this.#claims, taskId, index, false)
    const current = m?.get(requester)
    if (m === undefined || current === undefined || current <= now) return false
    m.set(requester, Math.min(current, until))
    return true
  }

  has (taskId: string, index: number, requester: string, now: number): boolean {
    return (entries(this.#claims, taskId, index, false)?.get(requester) ?? 0) > now
  }

  /** Live claims on the piece by requesters other than `requester`. */
  others (taskId: string, index: number, requester: string | undefined, now: number): number {
    let n = 0
    for (const [id, until] of entries(this.#claims, taskId, index, false) ?? []) if (id !== requester && until > now) n++
    return n
  }

  /** Drops a departed requester's claims; returns the tasks whose claims changed. */
  dropRequester (requester: string): string[] {
    return removeRequester(this.#claims, requester)
  }

  dropTask (taskId: string): void {
    this.#claims.delete(taskId)
  }

  /** Forgets lapsed claims (bounded memory). */
  prune (now: number): void {
    prune(this.#claims, until => until <= now)
  }
}

/**
 * Since when each requester has been waiting for a source of a piece of its window. Replaced for a
 * (task, requester) on each of its polls, so it holds at most one window per requester and task.
 */
export class SourceWaits {
  /** taskId → requester → piece index → first time it was told "no source yet". */
  readonly #waits = new Map<string, Map<string, Map<number, number>>>()

  /** The pieces the requester waits for after this poll, keeping the start of continuing waits. */
  update (taskId: string, requester: string, waiting: readonly number[], now: number): void {
    let byRequester = this.#waits.get(taskId)
    const old = byRequester?.get(requester)
    if (waiting.length === 0) {
      byRequester?.delete(requester)
      if (byRequester?.size === 0) this.#waits.delete(taskId)
      return
    }
    if (old === undefined) {
      if (byRequester === undefined) this.#waits.set(taskId, byRequester = new Map())
      byRequester.set(requester, new Map(waiting.map(index => [index, now])))
      return
    }
    // Updated in place rather than replaced: a requester's waits outlive many polls of other peers,
    // and a fresh map per poll was copied by every young-generation collection before it died.
    const still = new Set(waiting)
    for (const index of old.keys()) if (!still.has(index)) old.delete(index)
    for (const index of waiting) if (!old.has(index)) old.set(index, now)
  }

  /** When the requester started waiting for a source of the piece, or undefined. */
  since (taskId: string, requester: string, index: number): number | undefined {
    return this.#waits.get(taskId)?.get(requester)?.get(index)
  }

  /** The earliest start among the requester's waits in the task, or undefined when it waits for none. */
  earliest (taskId: string, requester: string): number | undefined {
    let min: number | undefined
    for (const since of this.#waits.get(taskId)?.get(requester)?.values() ?? []) if (min === undefined || since < min) min = since
    return min
  }

  dropRequester (requester: string): void {
    for (const [taskId, byRequester] of this.#waits) {
      byRequester.delete(requester)
      if (byRequester.size === 0) this.#waits.delete(taskId)
    }
  }

  dropTask (taskId: string): void {
    this.#waits.delete(taskId)
  }

  /** Forgets the waits of requesters `keep` rejects (bounded memory). */
  prune (keep: (requester: string) => boolean): void {
    for (const [taskId, byRequester] of this.#waits) {
      for (const requester of byRequester.keys()) if (!keep(requester)) byRequester.delete(requester)
      if (byRequester.size === 0) this.#waits.delete(taskId)
    }
  }
}

function prune (m: ByPiece, drop: (until: number) => boolean): void {
  for (const [taskId, byIndex] of m) {
    for (const [index, byRequester] of byIndex) {
      for (const [id, until] of byRequester) if (drop(until)) byRequester.delete(id)
      if (byRequester.size === 0) byIndex.delete(index)
    }
    if (byIndex.size === 0) m.delete(taskId)
  }
}
