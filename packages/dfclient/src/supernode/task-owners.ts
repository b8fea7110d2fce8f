import { dfError, isDfError } from '@damselfly/proto'
import type { ReportClient } from './piece-reporter.js'
import type { Endpoint, SupernodeRing } from './ring.js'

/** True when a call failed because the supernode could not be reached (not an answer it gave). */
export function isUnreachable (err: unknown): boolean {
  return isDfError(err) && err.code === 'DF_ERR_SUPERNODE_UNAVAILABLE' && err.details?.status === undefined
}

/**
 * Which supernode each task's calls go to. Normally the ring's owner; but a download keeps the owner
 * it registered with for as long as it runs and that supernode stays healthy (its owner is "sticky"):
 * moving a running download to a supernode that came back, or joined, would cost another upstream copy
 * and a second swarm for the same blob. Only the owner's failure moves it (`move`).
 */
export class TaskOwners {
  readonly #ring: SupernodeRing
  readonly #sticky = new Map<string, { endpoint: Endpoint, refs: number }>()

  constructor (ring: SupernodeRing) {
    this.#ring = ring
  }

  get ring (): SupernodeRing { return this.#ring }

  /** Where the task's calls go now, or undefined when no supernode is healthy. */
  endpointFor (digest: string): Endpoint | undefined {
    const s = this.#sticky.get(digest)
    if (s !== undefined && s.endpoint.healthy && this.#ring.get(s.endpoint.url) === s.endpoint) return s.endpoint
    return this.#ring.owner(digest)
  }

  /** A download of `digest` registered at `endpoint`; its calls stay there until `release`. */
  hold (digest: string, endpoint: Endpoint): () => void {
    const s = this.#sticky.get(digest)
    if (s === undefined) this.#sticky.set(digest, { endpoint, refs: 1 })
    else { s.refs++; s.endpoint = endpoint }
    let released = false
    return () => {
      if (released) return
      released = true
      const cur = this.#sticky.get(digest)
      if (cur !== undefined && --cur.refs <= 0) this.#sticky.delete(digest)
    }
  }

  /** The downloads of `digest` now talk to `endpoint` (their owner failed). */
  move (digest: string, endpoint: Endpoint): void {
    const s = this.#sticky.get(digest)
    if (s !== undefined) s.endpoint = endpoint
  }

  /** True while a download of `digest` runs (it re-reports its own pieces when its owner moves). */
  active (digest: string): boolean { return this.#sticky.has(digest) }

  /** Runs `call` against the task's supernode; an unreachable one is marked down before the error is rethrown. */
  async call<T> (digest: string, call: (e: Endpoint) => Promise<T>): Promise<T> {
    const e = this.endpointFor(digest)
    if (e === undefined) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `no healthy supernode for ${digest}`)
    try {
      return await call(e)
    } catch (err) {
      if (isUnreachable(err)) this.#ring.markDown(e, err instanceof Error ? err.message : String(err))
      throw err
    }
  }

  /** The reporter's client: each report goes to its task's supernode. */
  reportClient (): ReportClient {
    return {
      reportPieces: async (digest, peerId, pieces, signal) => { await this.call(digest, async e => { await e.client.reportPieces(digest, peerId, pieces, signal) }) },
      reportPieceResults: async (digest, peerId, results, signal) => { await this.call(digest, async e => { await e.client.reportPieceResults(digest, peerId, results, signal) }) }
    }
  }
}
