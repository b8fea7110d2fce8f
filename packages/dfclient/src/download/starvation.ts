import { performance } from 'node:perf_hooks'

/**
 * "Never worse than no P2P", as a last resort: a reader that has waited this long for a piece no fetch
 * is working on (no source offered, or every one failed) gives P2P up, and the rest of the blob comes
 * from the upstream. Longer than anything the supernode may legitimately make a requester wait for a
 * first copy (its stretched source wait, at most 15 s, plus one 10 s long-poll), so it only fires when
 * something is wrong — e.g. a scheduler that keeps offering no source.
 */
export const STARVED_MS = 30_000

/**
 * Times how long the reader has been starved: `update(true)` while it waits for a piece nobody
 * fetches, `update(false)` once someone does (or it has it). `onStarved` runs once the limit is hit.
 */
export class StarvationWatch {
  readonly #limitMs: number
  readonly #onStarved: () => void
  #since: number | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (limitMs: number, onStarved: () => void) {
    this.#limitMs = limitMs
    this.#onStarved = onStarved
  }

  update (starved: boolean): void {
    if (!starved) { this.stop(); return }
    const now = performance.now()
    this.#since ??= now
    const left = this.#since + this.#limitMs - now
    if (left <= 0) { this.stop(); this.#onStarved(); return }
    this.#timer ??= setTimeout(() => { this.#timer = undefined; this.update(true) }, Math.ceil(left))
  }

  stop (): void {
    this.#since = undefined
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
