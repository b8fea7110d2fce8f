import type { HolderSet } from './holdings.js'
import type { PeerEntry } from './peer-entry.js'
import { isUsable, type SourceLoad } from './rank-sources.js'

/**
 * What picking the holders to rank needs besides the piece: the same for every piece of one request
 * (built once per request, so that sampling a piece allocates nothing but its result).
 */
export interface HolderSampler {
  /** The load of a holder as a source for this requester, or null when it may not serve it. */
  loadOf: (peer: PeerEntry) => SourceLoad | null
  /** Whether `loadOf` answers null for the peer in this slot, told without reading its entry. */
  excluded: (slot: number) => boolean
  /** Holders ranked at most (`MAX_HOLDERS_RANKED`); a piece with no more holders is ranked whole. */
  limit: number
  /** Further holders or free peers checked at most when the sample has no usable holder (`MAX_USABLE_SEARCH`). */
  searchLimit: number
  failuresBeforeDemotion: number
  /** Ranked whenever they hold the piece: the sources the requester's own fetches load (members only). */
  own: readonly PeerEntry[]
  /** Live peers with an upload slot free (they may still be failing or quarantined: loadOf decides), in the order searched. */
  free: ReadonlySet<PeerEntry>
  /** Membership of `free` by slot (`Membership.freeBySlot`). */
  freeBySlot: Uint8Array
  /** 0 at the slot of each peer whose failures are 0 (`Membership.failedBySlot`). */
  failedBySlot: Uint8Array
  /** The requester's own uploads in flight from the source in this slot (see `isUsable`). */
  ownOf: (slot: number) => number
}

/**
 * The eligible holders of one piece that its ranking considers. A piece with at most `limit` holders
 * is ranked whole, exactly as the rule reads. Beyond that, ranking every holder of every piece on every
 * request is what made a 10,000-peer swarm cost O(pieces × holders) per poll, so the ranking sees
 * `limit` eligible holders taken from the piece's rotating cursor (successive requesters that are
 * assigned the piece see successive holders, spreading uploads as Dragonfly's random sample of 15
 * candidate parents does), plus the pinned peers (`current`: the requester's current source for the
 * piece, and `own`). When none of those can take an upload now, the rule's "a usable holder exists"
 * must still hold if one does: the rest of the holders, or the peers with a free upload slot that
 * hold the piece (whichever set is smaller), are searched for usable ones, at most `searchLimit`
 * peers looked at. `rotate` advances the piece's cursor: the next requester is shown the holders
 * after these.
 */
export function sampleHolders (i: HolderSampler, set: HolderSet, rotate: boolean, current: PeerEntry | undefined): SourceLoad[] {
  const out: SourceLoad[] = []
  const size = set.size
  if (size <= i.limit) {
    for (let k = 0; k < size; k++) {
      const l = i.loadOf(set.at(k))
      if (l !== null) out.push(l)
    }
    return out
  }
  const f = i.failuresBeforeDemotion
  let usable = 0
  const start = set.cursor
  let scanned = 0
  while (out.length < i.limit && scanned < size) {
    const p = set.at((start + scanned) % size)
    const l = i.loadOf(p)
    scanned++
    if (l === null) continue
    out.push(l)
    if (isUsable(l, f, i.ownOf(p.slot))) usable++
  }
  if (rotate) set.cursor = start + scanned
  if (current !== undefined) usable += pin(out, current, i, set, f)
  for (const p of i.own) usable += pin(out, p, i, set, f)
  if (usable > 0 || scanned >= size) return out
  // Both searches stop after `searchLimit` peers looked at, usable or not. Only a peer with a free
  // upload slot can be usable (the requester's own sources were pinned above): a cheap test first.
  let checks = 0
  if (i.free.size < size - scanned) {
    for (const p of i.free) {
      if (++checks > i.searchLimit || usable >= i.limit) break
      if (set.has(p)) usable += addIfUsable(out, p, i, f)
    }
  } else {
    for (let k = scanned; k < size && ++checks <= i.searchLimit && usable < i.limit; k++) {
      const at = (start + k) % size
      if (i.freeBySlot[set.slotAt(at)] !== 0) usable += addIfUsable(out, set.at(at), i, f)
    }
  }
  return out
}

/** Adds a pinned holder not yet in `out`; returns 1 when it is usable. */
function pin (out: SourceLoad[], p: PeerEntry, i: HolderSampler, set: HolderSet, f: number): number {
  if (!set.has(p) || contains(out, p)) return 0
  const l = i.loadOf(p)
  if (l === null) return 0
  out.push(l)
  return isUsable(l, f, i.ownOf(p.slot)) ? 1 : 0
}

/** Adds a holder found by the search if it is usable and new; returns 1 when added. */
function addIfUsable (out: SourceLoad[], p: PeerEntry, i: HolderSampler, f: number): number {
  if (contains(out, p)) return 0
  const l = i.loadOf(p)
  if (l === null || !isUsable(l, f, i.ownOf(p.slot))) return 0
  out.push(l)
  return 1
}

/** At most a few dozen entries: a scan is cheaper than building a set per piece. */
function contains (out: readonly SourceLoad[], p: PeerEntry): boolean {
  for (const l of out) if (l.peerId === p.id) return true
  return false
}

/** What `sampleHolders` would find, learned without reading a load for every busy holder. */
export interface HolderScan {
  /** Some candidate can take an upload for this requester (then rank the piece in full). */
  usable: boolean
  /** Some candidate is eligible, busy and not failing (a slot frees soon: "no source yet"). */
  busyWorking: boolean
  /** How far `sampleHolders` would move the cursor. */
  scanned: number
}

/**
 * The answer to "could this piece be served now?" for a requester with no assignment on it, over
 * exactly the candidates `sampleHolders` takes (same cursor, same exclusions, same pinned peers,
 * same search), but testing a busy holder by its free flag instead of reading its load. A herd's
 * requesters ask about every piece of their window whose every holder is busy, once per poll: this
 * keeps those pieces cheap (a busy holder is tested by slot, its entry left unread).
 */
export function scanHolders (i: HolderSampler, set: HolderSet): HolderScan {
  const scan: HolderScan = { usable: false, busyWorking: false, scanned: 0 }
  const size = set.size
  if (size <= i.limit) {
    for (let k = 0; k < size && !scan.usable; k++) if (!i.excluded(set.slotAt(k))) visit(i, scan, set.at(k), set.slotAt(k))
    return scan
  }
  const start = set.cursor
  let taken = 0
  while (taken < i.limit && scan.scanned < size) {
    const at = (start + scan.scanned) % size
    scan.scanned++
    if (i.excluded(set.slotAt(at))) continue
    taken++
    visit(i, scan, set.at(at), set.slotAt(at))
  }
  for (const p of i.own) if (!scan.usable && set.has(p) && !i.excluded(p.slot) && !scanned(set, start, scan.scanned, p)) visit(i, scan, p, p.slot)
  if (scan.usable || scan.scanned >= size) return scan
  // The search `sampleHolders` runs: free holders only, so any found one that is eligible and not
  // failing is usable.
  let checks = 0
  if (i.free.size < size - scan.scanned) {
    for (const p of i.free) {
      if (++checks > i.searchLimit) break
      if (set.has(p) && found(i, p, p.slot)) { scan.usable = true; break }
    }
  } else {
    for (let k = scan.scanned; k < size && ++checks <= i.searchLimit; k++) {
      const at = (start + k) % size
      if (found(i, set.at(at), set.slotAt(at))) { scan.usable = true; break }
    }
  }
  return scan
}

/**
 * Whether `p` is among the first `count` holders from `start` (a pinned peer the sample took already).
 * They were just read: walking them again is cheaper than collecting them.
 */
function scanned (set: HolderSet, start: number, count: number, p: PeerEntry): boolean {
  const size = set.size
  for (let k = 0; k < count; k++) if (set.at((start + k) % size) === p) return true
  return false
}

/** One eligible candidate of `scanHolders`: holder `p`, in `slot`. */
function visit (i: HolderSampler, scan: HolderScan, p: PeerEntry, slot: number): void {
  const f = i.failuresBeforeDemotion
  const own = i.ownOf(slot)
  if (i.freeBySlot[slot] === 0 && own === 0) {
    // Saturated by others: not usable. Busy and working unless failing (read once: usually the first).
    if (!scan.busyWorking && working(i, p, slot)) scan.busyWorking = true
    return
  }
  const l = i.loadOf(p) as SourceLoad
  if (isUsable(l, f, own)) scan.usable = true
  else if (l.failures < f) scan.busyWorking = true
}

/** Whether the search of `scanHolders` finds holder `p` (in `slot`) usable. */
function found (i: HolderSampler, p: PeerEntry, slot: number): boolean {
  return i.freeBySlot[slot] !== 0 && !i.excluded(slot) && working(i, p, slot)
}

/**
 * Whether the eligible holder `p` (in `slot`) has fewer failures than demote it. Most peers never
 * failed: that is known by slot, without reading the load (its entry and the ledger's record of it,
 * at 10,000 peers two cache misses).
 */
function working (i: HolderSampler, p: PeerEntry, slot: number): boolean {
  const f = i.failuresBeforeDemotion
  if (i.failedBySlot[slot] === 0) return f > 0
  return (i.loadOf(p) as SourceLoad).failures < f
}
