import { rendezvousOwner } from '@damselfly/proto'
import type { SupernodeClient } from './client.js'

/** One supernode as this dfclient sees it. */
export interface Endpoint {
  readonly url: string
  readonly client: SupernodeClient
  /** True between a successful announce (or heartbeat) and the next failure to reach it. */
  healthy: boolean
  /** Its seed's libp2p peer id, from its announce reply: the supernode's identity on the ring. */
  peerId: string | undefined
  /** Why it was last marked down. */
  lastError: string | undefined
}

/**
 * The supernodes and which of them owns a task. Every dfclient announces to every supernode, and each
 * task (a blob digest) is registered, polled and reported at its owner: the healthy supernode that
 * rendezvous hashing of the task id picks (`rendezvousOwner` over the seeds' peer ids, so dfclients
 * that know the supernodes by different URLs still agree). A supernode is healthy while announcing
 * and heartbeating to it succeed; any call that cannot reach it marks it down at once, so its tasks
 * move to their runner-up by the same hash. Supernodes share no state: the new owner learns a moved
 * task from the downloads that re-register it there.
 */
export class SupernodeRing {
  readonly #endpoints = new Map<string, Endpoint>()
  readonly #listeners = new Set<(before: readonly Endpoint[]) => void>()

  add (url: string, client: SupernodeClient): Endpoint {
    const existing = this.#endpoints.get(url)
    if (existing !== undefined) return existing
    const e: Endpoint = { url, client, healthy: false, peerId: undefined, lastError: undefined }
    this.#endpoints.set(url, e)
    return e
  }

  /** Forgets a supernode that discovery no longer lists. */
  remove (url: string): void {
    const e = this.#endpoints.get(url)
    if (e === undefined) return
    const before = this.healthy()
    this.#endpoints.delete(url)
    if (e.healthy) this.#changed(before)
  }

  get (url: string): Endpoint | undefined { return this.#endpoints.get(url) }

  all (): Endpoint[] { return [...this.#endpoints.values()] }

  /** Healthy supernodes, one per identity (two URLs of one supernode count once). */
  healthy (): Endpoint[] {
    const seen = new Set<string>()
    const out: Endpoint[] = []
    for (const e of this.#endpoints.values()) {
      if (!e.healthy || e.peerId === undefined || seen.has(e.peerId)) continue
      seen.add(e.peerId)
      out.push(e)
    }
    return out
  }

  /** The supernode answered an announce or heartbeat; `peerId` is its seed's id. */
  markHealthy (e: Endpoint, peerId: string): void {
    if (e.healthy && e.peerId === peerId) return
    const before = this.healthy()
    e.healthy = true
    e.peerId = peerId
    e.lastError = undefined
    if (this.#endpoints.get(e.url) === e) this.#changed(before)
  }

  /** The supernode could not be reached. */
  markDown (e: Endpoint, reason: string): void {
    e.lastError = reason
    if (!e.healthy) return
    const before = this.healthy()
    e.healthy = false
    if (this.#endpoints.get(e.url) === e) this.#changed(before)
  }

  /** The owner of `taskId` among the healthy supernodes, or undefined when none is healthy. */
  owner (taskId: string, among: readonly Endpoint[] = this.healthy()): Endpoint | undefined {
    return rendezvousOwner(taskId, among, e => e.peerId as string)
  }

  /** Called after the healthy set changed, with the set before the change. */
  onChange (listener: (before: readonly Endpoint[]) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #changed (before: readonly Endpoint[]): void {
    for (const l of this.#listeners) l(before)
  }
}
