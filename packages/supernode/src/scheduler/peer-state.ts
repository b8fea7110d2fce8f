/**
 * Peer states. A peer's membership and its standing are kept apart on purpose: membership ends when
 * the peer leaves or goes silent, but its standing (integrity strikes, global quarantine) is keyed by
 * peer id and outlives membership, so leaving and re-announcing never washes a quarantine away.
 *
 * ```
 *            peerAnnounced                       strikes ≥ GLOBAL_QUARANTINE_STRIKES
 *   (none) ───────────────▶ active ─────────────────────────────────────────▶ quarantined
 *                             ▲                                                   │
 *                             └──────────── GLOBAL_QUARANTINE_MS elapse ──────────┘
 *   active | quarantined ──peerLeft──────────────────────────▶ left     (record, holdings and
 *   active | quarantined ──silent > ttl (sweep or lookup)────▶ expired   in-flight work dropped)
 *
 *   per task:  serving ──digest mismatch reported──▶ quarantined(task) ──TASK_QUARANTINE_MS──▶ serving
 * ```
 *
 * Timed transitions (a quarantine lapsing, a peer going silent) are read off the injected clock when
 * a state is asked for, so no timer lives in the scheduler; `Swarm.expireSilentPeers()` drops the
 * records and prunes lapsed standing periodically.
 */

export type PeerState = 'active' | 'quarantined' | 'expired'

/** A peer as announced. `lastSeen` is the clock at its last announce or heartbeat. */
export interface PeerRecord {
  peerId: string
  addrs: string[]
  hostname: string
  version?: string
  lastSeen: number
}

export function peerStateOf (peer: PeerRecord, now: number, ttlMs: number, standing: Standing): PeerState {
  if (now - peer.lastSeen > ttlMs) return 'expired'
  return standing.quarantinedUntil(peer.peerId, now) === undefined ? 'active' : 'quarantined'
}

export interface StandingInit {
  strikesToQuarantine: number
  strikeWindowMs: number
  quarantineMs: number
}

/**
 * Integrity strikes and global quarantines by peer id. A strike is a task in which the peer served a
 * piece that failed verification; several strikes in one task count once (a bad cached blob is one
 * fault, and one reporter cannot multiply it).
 */
export class Standing {
  readonly #init: StandingInit
  /** peerId → taskId → time of the strike. */
  readonly #strikes = new Map<string, Map<string, number>>()
  /** peerId → end of its global quarantine. */
  readonly #quarantined = new Map<string, number>()

  constructor (init: StandingInit) {
    this.#init = init
  }

  /** Records a strike; returns true when it starts a global quarantine. */
  strike (peerId: string, taskId: string, now: number): boolean {
    let strikes = this.#strikes.get(peerId)
    if (strikes === undefined) this.#strikes.set(peerId, strikes = new Map())
    strikes.set(taskId, now)
    for (const [t, at] of strikes) if (now - at > this.#init.strikeWindowMs) strikes.delete(t)
    if (strikes.size < this.#init.strikesToQuarantine) return false
    // Starting afresh: after the quarantine the peer needs as many new strikes to be excluded again.
    this.#strikes.delete(peerId)
    const already = this.quarantinedUntil(peerId, now) !== undefined
    this.#quarantined.set(peerId, now + this.#init.quarantineMs)
    return !already
  }

  /** The end of the peer's global quarantine, or undefined when it is not quarantined at `now`. */
  quarantinedUntil (peerId: string, now: number): number | undefined {
    const until = this.#quarantined.get(peerId)
    return until !== undefined && until > now ? until : undefined
  }

  /** Peers globally quarantined at `now` (usually none or a few). */
  * quarantinedPeers (now: number): Iterable<string> {
    for (const [peerId, until] of this.#quarantined) if (until > now) yield peerId
  }

  /** Forgets lapsed quarantines and strikes outside the window (bounded memory). */
  prune (now: number): void {
    for (const [peerId, until] of this.#quarantined) if (until <= now) this.#quarantined.delete(peerId)
    for (const [peerId, strikes] of this.#strikes) {
      for (const [t, at] of strikes) if (now - at > this.#init.strikeWindowMs) strikes.delete(t)
      if (strikes.size === 0) this.#strikes.delete(peerId)
    }
  }
}
