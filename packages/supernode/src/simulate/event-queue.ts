/** One scheduled action. `seq` keeps actions at the same time in the order they were scheduled. */
interface Entry {
  at: number
  seq: number
  run: (arg: number) => void
  /** Passed to `run`: lets one function serve many events without a closure each. */
  arg: number
}

/**
 * The simulated clock and its pending actions: a binary min-heap on (time, scheduling order), so a run
 * is deterministic. Actions cannot be cancelled; owners that reschedule (a transfer whose rate changed)
 * check a version when they run and ignore stale ones.
 */
export class EventQueue {
  readonly #heap: Entry[] = []
  #seq = 0
  #now = 0
  #processed = 0

  /** The simulated time, in milliseconds. */
  get now (): number { return this.#now }

  /** Actions run so far. */
  get processed (): number { return this.#processed }

  get size (): number { return this.#heap.length }

  /** Runs `run(arg)` at time `at` (never before now). */
  at (at: number, run: (arg: number) => void, arg = 0): void {
    const e: Entry = { at: Math.max(at, this.#now), seq: this.#seq++, run, arg }
    const h = this.#heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(e, h[parent] as Entry)) break
      h[i] = h[parent] as Entry
      i = parent
    }
    h[i] = e
  }

  /** Runs `run` after `ms`. */
  after (ms: number, run: () => void): void {
    this.at(this.#now + ms, run)
  }

  /** Runs actions in order until none is left, `stop()` returns true, or the clock passes `until`. */
  run (stop: () => boolean = () => false, until = Infinity): void {
    const h = this.#heap
    while (h.length > 0 && !stop()) {
      const top = h[0] as Entry
      if (top.at > until) return
      const last = h.pop() as Entry
      if (h.length > 0) siftDown(h, last)
      this.#now = top.at
      this.#processed++
      top.run(top.arg)
    }
  }
}

function before (a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

/** Puts `e` at the root's place and moves it down to where it belongs. */
function siftDown (h: Entry[], e: Entry): void {
  const n = h.length
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= n) break
    const r = l + 1
    const c = r < n && before(h[r] as Entry, h[l] as Entry) ? r : l
    if (!before(h[c] as Entry, e)) break
    h[i] = h[c] as Entry
    i = c
  }
  h[i] = e
}
