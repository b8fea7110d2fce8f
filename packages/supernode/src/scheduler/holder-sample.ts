import type { HolderSet } from './holdings.js'
import { isUsable, type SourceLoad } from './rank-sources.js'

/** What picking the holders to rank for one piece needs. */
export interface HolderSampleInput {
  holders: HolderSet
  /** The load of a holder as a source for this requester, or null when it may not serve it. */
  loadOf: (peerId: string) => SourceLoad | null
  /** Holders ranked at most (`MAX_HOLDERS_RANKED`); a piece with no more holders is ranked whole. */
  limit: number
  /** Further holders or free peers checked at most when the sample has no usable holder (`MAX_USABLE_SEARCH`). */
  searchLimit: number
  failuresBeforeDemotion: number
  /** Advance the piece's cursor: the next requester is shown the holders after these. */
  rotate: boolean
  /** Ranked whenever it holds the piece: the requester's current source for it. */
  current?: string | undefined
  /** Ranked whenever they hold the piece: the sources the requester's own fetches load. */
  own: Iterable<string>
  /** Live peers with an upload slot free (they may still be failing or quarantined: loadOf decides). */
  free: ReadonlySet<string>
  /** The requester's own uploads in flight from a source (see `isUsable`). */
  ownOf: (peerId: string) => number
}

/**
 * The eligible holders of one piece that its ranking considers. A piece with at most `limit` holders
 * is ranked whole, exactly as the rule reads. Beyond that, ranking every holder of every piece on every
 * request is what made a 10,000-peer swarm cost O(pieces × holders) per poll, so the ranking sees
 * `limit` eligible holders taken from the piece's rotating cursor (successive requesters that are
 * assigned the piece see successive holders, spreading uploads as Dragonfly's random sample of 15
 * candidate parents does), plus the pinned peers (`current`, `own`). When none of those can take an
 * upload now, the rule's "a usable holder exists" must still hold if one does: the rest of the
 * holders, or the peers with a free upload slot that hold the piece (whichever set is smaller), are
 * searched for usable ones, at most `searchLimit` peers looked at.
 */
export function sampleHolders (i: HolderSampleInput): SourceLoad[] {
  const set = i.holders
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
    const l = i.loadOf(set.at((start + scanned) % size))
    scanned++
    if (l === null) continue
    out.push(l)
    if (isUsable(l, f, i.ownOf(l.peerId))) usable++
  }
  if (i.rotate) set.cursor = start + scanned
  if (i.current !== undefined) usable += pin(out, i.current, i, f)
  for (const id of i.own) usable += pin(out, id, i, f)
  if (usable > 0 || scanned >= size) return out
  // Both searches stop after `searchLimit` peers looked at, usable or not. Only a peer with a free
  // upload slot can be usable (the requester's own sources were pinned above): a cheap test first.
  let checks = 0
  if (i.free.size < size - scanned) {
    for (const id of i.free) {
      if (++checks > i.searchLimit || usable >= i.limit) break
      if (set.has(id)) usable += addIfUsable(out, id, i, f)
    }
  } else {
    for (let k = scanned; k < size && ++checks <= i.searchLimit && usable < i.limit; k++) {
      const id = set.at((start + k) % size)
      if (i.free.has(id)) usable += addIfUsable(out, id, i, f)
    }
  }
  return out
}

/** Adds a pinned holder not yet in `out`; returns 1 when it is usable. */
function pin (out: SourceLoad[], id: string, i: HolderSampleInput, f: number): number {
  if (!i.holders.has(id) || contains(out, id)) return 0
  const l = i.loadOf(id)
  if (l === null) return 0
  out.push(l)
  return isUsable(l, f, i.ownOf(id)) ? 1 : 0
}

/** Adds a holder found by the search if it is usable and new; returns 1 when added. */
function addIfUsable (out: SourceLoad[], id: string, i: HolderSampleInput, f: number): number {
  if (contains(out, id)) return 0
  const l = i.loadOf(id)
  if (l === null || !isUsable(l, f, i.ownOf(id))) return 0
  out.push(l)
  return 1
}

/** At most a few dozen entries: a scan is cheaper than building a set per piece. */
function contains (out: readonly SourceLoad[], id: string): boolean {
  for (const l of out) if (l.peerId === id) return true
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
 * same search), but testing a busy holder by its absence from the free set instead of reading its
 * load. A herd's requesters ask about many pieces whose every holder is busy, once per poll: this
 * keeps those pieces cheap. `excluded` is the plan's exclusion set; `load` reads one holder's load.
 */
export function scanHolders (i: Omit<HolderSampleInput, 'loadOf' | 'rotate' | 'current'>, excluded: ReadonlySet<string>, load: (peerId: string) => SourceLoad): HolderScan {
  const set = i.holders
  const f = i.failuresBeforeDemotion
  const scan: HolderScan = { usable: false, busyWorking: false, scanned: 0 }
  const visit = (id: string): void => {
    const own = i.ownOf(id)
    if (!i.free.has(id) && own === 0) {
      // Saturated by others: not usable. Busy and working unless failing (read once: usually the first).
      if (!scan.busyWorking && load(id).failures < f) scan.busyWorking = true
      return
    }
    const l = load(id)
    if (isUsable(l, f, own)) scan.usable = true
    else if (l.failures < f) scan.busyWorking = true
  }
  const size = set.size
  if (size <= i.limit) {
    for (let k = 0; k < size && !scan.usable; k++) if (!excluded.has(set.at(k))) visit(set.at(k))
    return scan
  }
  const start = set.cursor
  const seen: string[] = []
  let taken = 0
  while (taken < i.limit && scan.scanned < size) {
    const id = set.at((start + scan.scanned) % size)
    scan.scanned++
    if (excluded.has(id)) continue
    taken++
    seen.push(id)
    visit(id)
  }
  for (const id of i.own) if (!scan.usable && set.has(id) && !excluded.has(id) && !seen.includes(id)) visit(id)
  if (scan.usable || scan.scanned >= size) return scan
  // The search `sampleHolders` runs: free holders only, so any found one that is eligible and not
  // failing is usable.
  let checks = 0
  const found = (id: string): boolean => {
    if (!set.has(id) || excluded.has(id) || !i.free.has(id)) return false
    return load(id).failures < f
  }
  if (i.free.size < size - scan.scanned) {
    for (const id of i.free) {
      if (++checks > i.searchLimit) break
      if (found(id)) { scan.usable = true; break }
    }
  } else {
    for (let k = scan.scanned; k < size && ++checks <= i.searchLimit; k++) {
      if (found(set.at((start + k) % size))) { scan.usable = true; break }
    }
  }
  return scan
}
