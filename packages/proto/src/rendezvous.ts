import { createHash } from 'node:crypto'

/**
 * Rendezvous (highest-random-weight) hashing: which of several nodes owns a key. Every node gets a
 * score from a hash of (node, key); the highest score owns the key, and the order of scores is the
 * order of fallbacks. Anyone holding the same node ids computes the same owner with no coordination,
 * and removing a node moves only the keys it owned, each to its own runner-up (Kraken places blobs
 * on its origin ring the same way; Dragonfly 2 routes tasks to schedulers by a consistent hash of the
 * task id). Damselfly uses it to pick the supernode that owns a task: the dfclients agree on it
 * because they hash the same supernode ids (their seed peer ids) and the same task ids.
 */

/** The score of `node` for `key`: the first 48 bits of SHA-256(node, NUL, key). */
export function rendezvousScore (node: string, key: string): number {
  return createHash('sha256').update(node).update('\0').update(key).digest().readUIntBE(0, 6)
}

/** `nodes` ordered by their score for `key`, owner first (ties, practically impossible, by id). */
export function rendezvousOrder<T> (key: string, nodes: readonly T[], id: (node: T) => string): T[] {
  return nodes
    .map(node => ({ node, id: id(node), score: rendezvousScore(id(node), key) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(s => s.node)
}

/** The owner of `key` among `nodes`, or undefined when there are none. */
export function rendezvousOwner<T> (key: string, nodes: readonly T[], id: (node: T) => string): T | undefined {
  let best: { node: T, id: string, score: number } | undefined
  for (const node of nodes) {
    const nodeId = id(node)
    const score = rendezvousScore(nodeId, key)
    if (best === undefined || score > best.score || (score === best.score && nodeId < best.id)) best = { node, id: nodeId, score }
  }
  return best?.node
}
