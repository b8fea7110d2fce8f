/**
 * The simulated clock and its pending actions: a binary min-heap on (time, scheduling order), so a run
 * is deterministic. Actions cannot be cancelled; owners that reschedule (a transfer whose rate changed)
 * check a version when they run and ignore stale ones.
 *
 * The heap lives in parallel arrays rather than one object per entry: a 10,000-peer run schedules
 * millions of actions with tens of thousands pending, and an entry object each made the sift's
 * pointer chasing (cache misses) and the garbage collector a visible share of the run.
 */
export class EventQueue {
  /** Heap order over the slots below. */
  readonly #at: number[] = []
  readonly #seq: number[] = []
  readonly #run: Array<(arg: number) => void> = []
  readonly #arg: number[] = []
  #seq0 = 0
  #now = 0
  #processed = 0

  /** The simulated time, in milliseconds. */
  get now (): number { return this.#now }

  /** Actions run so far. */
  get processed (): number { return this.#processed }

  get size (): number { return this.#at.length }

  /** Runs `run(arg)` at time `at` (never before now). */
  at (at: number, run: (arg: number) => void, arg = 0): void {
    const t = Math.max(at, this.#now)
    const seq = this.#seq0++
    const A = this.#at
    const S = this.#seq
    const R = this.#run
    const G = this.#arg
    let i = A.length
    A.push(t); S.push(seq); R.push(run); G.push(arg)
    while (i > 0) {
      const p = (i - 1) >> 1
      const pa = A[p] as number
      if (pa < t || (pa === t && (S[p] as number) < seq)) break
      A[i] = pa; S[i] = S[p] as number; R[i] = R[p] as (arg: number) => void; G[i] = G[p] as number
      i = p
    }
    A[i] = t; S[i] = seq; R[i] = run; G[i] = arg
  }

  /** Runs `run` after `ms`. */
  after (ms: number, run: () => void): void {
    this.at(this.#now + ms, run)
  }

  /** Runs actions in order until none is left, `stop()` returns true, or the clock passes `until`. */
  run (stop: () => boolean = () => false, until = Infinity): void {
    const A = this.#at
    while (A.length > 0 && !stop()) {
      const at = A[0] as number
      if (at > until) return
      const run = this.#run[0] as (arg: number) => void
      const arg = this.#arg[0] as number
      this.#pop()
      this.#now = at
      this.#processed++
      run(arg)
    }
  }

  /** Removes the root: the last entry moves down from the root's place to where it belongs. */
  #pop (): void {
    const A = this.#at
    const S = this.#seq
    const R = this.#run
    const G = this.#arg
    const t = A.pop() as number
    const seq = S.pop() as number
    const run = R.pop() as (arg: number) => void
    const arg = G.pop() as number
    const n = A.length
    if (n === 0) return
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n) {
        const ar = A[r] as number
        const al = A[l] as number
        if (ar < al || (ar === al && (S[r] as number) < (S[l] as number))) c = r
      }
      const ac = A[c] as number
      if (ac > t || (ac === t && (S[c] as number) > seq)) break
      A[i] = ac; S[i] = S[c] as number; R[i] = R[c] as (arg: number) => void; G[i] = G[c] as number
      i = c
    }
    A[i] = t; S[i] = seq; R[i] = run; G[i] = arg
  }
}
