import type { PeerRecord } from './peer-state.js'
import type { SourceLoad } from './rank-sources.js'
import type { SourceStats } from './upload-ledger.js'

/**
 * One announced peer as the scheduler's hot paths see it, interned once when it announces
 * (`membership.ts`) and handed around instead of its id. A poll looks at a few hundred holders, and
 * for each one asks whether it holds a piece, is excluded, has a slot free and how loaded it is: with
 * string-keyed maps and sets, each question was a lookup in a table of every peer, and at 10,000
 * peers those lookups, as cache misses, were most of a poll's cost. Here each is a field of the one
 * object the holder set already returned, or a read of a small array indexed by its `slot`.
 *
 * Events still name peers by id: an entry lives exactly as long as the peer's membership.
 */
export class PeerEntry {
  readonly id: string
  /**
   * A small integer unique among the current members, reused after the peer leaves: holder sets
   * (`holdings.ts`) and the free flags (`membership.ts`) index by it, and planning tells peers
   * apart by it, which is why a departing peer's holdings must go before its membership does.
   */
  readonly slot: number
  record: PeerRecord
  /** The upload ledger's stats for this peer as a source, once looked up (`UploadLedger.viewOf`). */
  stats: SourceStats | undefined = undefined
  /** The planning request that last read the peer's load, and what it read (null: not eligible). */
  loadBy = 0
  load: SourceLoad | null = null

  constructor (record: PeerRecord, slot: number) {
    this.id = record.peerId
    this.record = record
    this.slot = slot
  }
}
