import type { EventQueue } from './event-queue.js'

/** A host's network interface: its uplink and downlink rates (bytes per ms) and the transfers on them. */
export interface Host {
  readonly id: string
  readonly up: number
  readonly down: number
  readonly uploads: Set<Transfer>
  readonly downloads: Set<Transfer>
  /** Bytes this host finished sending (plus what cancelled transfers had sent). */
  uploaded: number
}

/** One piece on the wire from `src` to `dst`. */
export interface Transfer {
  readonly src: Host
  readonly dst: Host
  readonly bytes: number
  readonly startedAt: number
  /** Bytes still to send as of `at`. */
  remaining: number
  /** Current rate in bytes per ms. */
  rate: number
  at: number
  /** When its pending finish event runs (Infinity: none pending). */
  due: number
  /** Bumped on every reschedule: a finish event of an older version is stale. */
  version: number
  live: boolean
  readonly onDone: (t: Transfer) => void
  /** Runs the finish of the given version (see `Network`). */
  readonly finish: (version: number) => void
}

/**
 * The bandwidth model. Every transfer gets an equal share of its sender's uplink and of its
 * receiver's downlink, and moves at the smaller of the two; shares are recomputed whenever a transfer
 * starts or ends on either host. Capacity a transfer cannot use because the other end is the tighter
 * one is not handed to the others (no max-min water-filling): the model errs towards slow, never
 * towards faster than real links. Latency is the caller's (it starts transfers when they would start).
 */
export class Network {
  readonly #q: EventQueue

  constructor (queue: EventQueue) {
    this.#q = queue
  }

  host (id: string, up: number, down: number): Host {
    if (!(up > 0) || !(down > 0)) throw new RangeError(`host ${id}: link rates must be positive`)
    return { id, up, down, uploads: new Set(), downloads: new Set(), uploaded: 0 }
  }

  /** Starts sending `bytes` from `src` to `dst`; `onDone` runs when the last byte arrives. */
  start (src: Host, dst: Host, bytes: number, onDone: (t: Transfer) => void): Transfer {
    const now = this.#q.now
    const t: Transfer = { src, dst, bytes, startedAt: now, remaining: bytes, rate: 0, at: now, due: Infinity, version: 0, live: true, onDone, finish: (version: number) => { this.#finish(t, version) } }
    src.uploads.add(t)
    dst.downloads.add(t)
    this.#reshare(src, dst)
    return t
  }

  /** Stops a transfer (its sender died, or it is no longer wanted); `onDone` never runs. */
  cancel (t: Transfer): void {
    if (!t.live) return
    this.#settle(t)
    t.src.uploaded += t.bytes - t.remaining
    this.#end(t)
  }

  #end (t: Transfer): void {
    t.live = false
    t.src.uploads.delete(t)
    t.dst.downloads.delete(t)
    this.#reshare(t.src, t.dst)
  }

  /** New shares for every transfer on `src`'s uplink and `dst`'s downlink. */
  #reshare (src: Host, dst: Host): void {
    for (const t of src.uploads) this.#rerate(t)
    for (const t of dst.downloads) this.#rerate(t)
  }

  #rerate (t: Transfer): void {
    const rate = Math.min(t.src.up / t.src.uploads.size, t.dst.down / t.dst.downloads.size)
    if (rate === t.rate) return
    this.#settle(t)
    t.rate = rate
    // A transfer slowed down keeps its pending event, which finds bytes left and schedules the rest:
    // each start on a busy link slows every transfer on it, and an event per slowed transfer was most
    // of a large run's events. Only one that now ends earlier than its pending event needs a new one.
    // The transfer carries its own handler (no closure per event); an event of an older version is stale.
    const due = this.#q.now + t.remaining / rate
    if (due >= t.due) return
    t.due = due
    t.version++
    this.#q.at(due, t.finish, t.version)
  }

  #finish (t: Transfer, version: number): void {
    if (!t.live || t.version !== version) return
    this.#settle(t)
    // Slowed down since this event was set: the rest goes at the current rate.
    if (t.remaining > t.bytes * 1e-9) {
      t.due = this.#q.now + t.remaining / t.rate
      this.#q.at(t.due, t.finish, t.version)
      return
    }
    t.remaining = 0
    t.due = Infinity
    t.src.uploaded += t.bytes
    this.#end(t)
    t.onDone(t)
  }

  /** Brings `remaining` up to now at the current rate. */
  #settle (t: Transfer): void {
    const now = this.#q.now
    t.remaining = Math.max(0, t.remaining - t.rate * (now - t.at))
    t.at = now
  }
}
