import type { RequestHandler } from 'express'
import { peerIdString } from '@damselfly/proto'

/** As long as a silent peer keeps its registration (scheduler PEER_TTL_MS). */
const CALLER_TTL_MS = 35_000
/** Bounded memory whatever callers claim. */
const MAX_CALLERS = 100_000

/**
 * Peer ids that called the peer API lately (behind the cluster token): a task registration, a
 * `pieces` poll, a report. They count as registered for the piece allow-list even before they
 * announce, because right after a supernode restart the swarm is empty until each peer's next
 * heartbeat (up to 10 s) re-announces it, while its downloads already poll and fetch pieces. Such a
 * call is the same claim an announce is (a peer id, with the cluster token), so this trusts no more.
 */
export class RecentCallers {
  readonly #seen = new Map<string, number>()
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  note (peerId: string): void {
    this.#seen.delete(peerId)
    this.#seen.set(peerId, this.#now())
    while (this.#seen.size > MAX_CALLERS) this.#seen.delete(this.#seen.keys().next().value as string)
  }

  has (peerId: string): boolean {
    const at = this.#seen.get(peerId)
    return at !== undefined && this.#now() - at <= CALLER_TTL_MS
  }

  ids (): string[] {
    const now = this.#now()
    return [...this.#seen].filter(([, at]) => now - at <= CALLER_TTL_MS).map(([id]) => id)
  }

  /** Notes the `peerId` a peer-API call names (query or JSON body); mount after the token check and body parser. */
  middleware (): RequestHandler {
    return (req, res, next) => {
      res.once('finish', () => {
        // Only calls the API accepted: a refused one proves nothing.
        if (res.statusCode >= 400) return
        const query = req.query as Record<string, unknown>
        const body = req.body as Record<string, unknown> | undefined
        for (const v of [query.peerId, body?.peerId]) if (typeof v === 'string' && peerIdString.safeParse(v).success) this.note(v)
      })
      next()
    }
  }
}
