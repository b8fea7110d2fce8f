import type { SimPeer } from './sim-peer.js'

interface Waiter { peer: SimPeer, gen: number }

interface Queue {
  items: Waiter[]
  head: number
  /** Live entries at the last compaction: the queue is compacted when it grows well past that. */
  live: number
}

/**
 * Who waits for a source of which piece, oldest first. A peer's entries are stale once it polled
 * again (its `waitGen` moved on); stale entries are skipped when woken and compacted away as a queue
 * grows, so memory stays proportional to the peers actually waiting.
 */
export class WaitQueues {
  readonly #queues = new Map<number, Queue>()

  /** Pieces with a non-empty queue (some entries may be stale). */
  indices (): IterableIterator<number> { return this.#queues.keys() }

  add (peer: SimPeer, indices: readonly number[]): void {
    for (const index of indices) {
      let q = this.#queues.get(index)
      if (q === undefined) this.#queues.set(index, q = { items: [], head: 0, live: 0 })
      q.items.push({ peer, gen: peer.waitGen })
      if (q.items.length - q.head > Math.max(64, 2 * q.live)) compact(q)
    }
  }

  /** Wakes up to `n` peers waiting for `index`, longest waiting first; returns how many. */
  wake (index: number, n: number): number {
    const q = this.#queues.get(index)
    if (q === undefined) return 0
    let woken = 0
    while (woken < n && q.head < q.items.length) {
      const w = q.items[q.head++] as Waiter
      if (w.gen !== w.peer.waitGen || w.peer.done) continue
      // Its other entries go stale when it polls: a peer is woken once per wait.
      w.peer.waitGen++
      w.peer.wake()
      woken++
    }
    if (q.head >= q.items.length) this.#queues.delete(index)
    else if (q.head > 1024 && q.head * 2 > q.items.length) compact(q)
    return woken
  }
}

function compact (q: Queue): void {
  q.items = q.items.slice(q.head).filter(w => w.gen === w.peer.waitGen && !w.peer.done)
  q.head = 0
  q.live = q.items.length
}
