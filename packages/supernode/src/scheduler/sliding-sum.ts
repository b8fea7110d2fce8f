/**
 * A sum over a sliding time window, kept in fixed buckets: memory is constant however many samples
 * arrive, and a sample ages out within one bucket's length of the window's end. Time is passed in,
 * never read: the owner holds the clock.
 */
export class SlidingSum {
  readonly #bucketMs: number
  readonly #buckets: number
  /** Oldest first; `slot` is `floor(at / bucketMs)`. At most `#buckets` entries. */
  readonly #slots: Array<{ slot: number, value: number }> = []
  /** The last sum computed and the bucket it was computed in: it only changes with a sample or a new bucket. */
  #memoSlot = NaN
  #memoSum = 0

  constructor (windowMs: number, buckets: number) {
    this.#buckets = Math.max(1, Math.floor(buckets))
    this.#bucketMs = Math.max(1, windowMs / this.#buckets)
  }

  add (value: number, now: number): void {
    this.#memoSlot = NaN
    const slot = Math.floor(now / this.#bucketMs)
    this.#prune(slot)
    const last = this.#slots.at(-1)
    if (last !== undefined && last.slot === slot) last.value += value
    else this.#slots.push({ slot, value })
  }

  /** The sum of the samples inside the window ending at `now`. */
  sum (now: number): number {
    const current = Math.floor(now / this.#bucketMs)
    if (current === this.#memoSlot) return this.#memoSum
    const oldest = current - this.#buckets + 1
    let total = 0
    for (const s of this.#slots) if (s.slot >= oldest) total += s.value
    this.#memoSlot = current
    this.#memoSum = total
    return total
  }

  /** The sum per second over the window (e.g. bytes/s). */
  perSecond (now: number): number {
    return this.sum(now) / (this.#bucketMs * this.#buckets / 1000)
  }

  /** True when nothing inside the window remains (the owner may drop it). */
  empty (now: number): boolean {
    return this.sum(now) === 0
  }

  #prune (slot: number): void {
    const oldest = slot - this.#buckets + 1
    while (this.#slots.length > 0 && (this.#slots[0] as { slot: number }).slot < oldest) this.#slots.shift()
  }
}
