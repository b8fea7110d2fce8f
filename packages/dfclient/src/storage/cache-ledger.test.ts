import { describe, expect, it } from 'vitest'
import { BLOCK_BYTES, CacheLedger, roundUp, sidecarBytes } from './cache-ledger.js'

const MiB = 1024 * 1024
const d = (c: string): string => `sha256:${c.repeat(64)}`

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000_000
  return { now: () => t, advance: (ms) => { t += ms } }
}

describe('CacheLedger', () => {
  it('counts pieces in 4 KiB blocks plus one sidecar per blob, idempotently', () => {
    const l = new CacheLedger()
    l.addPiece(d('a'), 0, 4 * MiB, 2)
    l.addPiece(d('a'), 0, 4 * MiB, 2)
    l.addPiece(d('a'), 1, 100, 2)
    expect(l.bytesOf(d('a'))).toBe(4 * MiB + BLOCK_BYTES + sidecarBytes(2))
    expect(l.usedBytes).toBe(l.bytesOf(d('a')))
    l.removePiece(d('a'), 1)
    expect(l.usedBytes).toBe(4 * MiB + sidecarBytes(2))
    expect(l.forget(d('a'))).toBe(4 * MiB + sidecarBytes(2))
    expect(l.usedBytes).toBe(0)
    expect(roundUp(1)).toBe(BLOCK_BYTES)
  })

  it('plans evictions least recently used first, never the kept, leased or pinned blob', () => {
    const c = clock()
    const l = new CacheLedger({ quotaBytes: 10 * MiB, now: c.now })
    for (const x of ['a', 'b', 'c', 'e']) { l.addPiece(d(x), 0, 2 * MiB, 1); c.advance(1000) }
    l.touch(d('a')) // a is now the most recent
    const release = l.acquire(d('b'))
    l.pin(d('c'))
    const plan = l.planAdmission(4 * MiB, d('x'), () => false)
    // 4 × (2 MiB + 4 KiB) used; 4 MiB more needs ~2 MiB freed: e (oldest idle), then a.
    expect(plan).toEqual({ victims: [d('e'), d('a')], fits: true })
    expect(l.planAdmission(100 * MiB, d('x'), () => false).fits).toBe(false)
    expect(l.planAdmission(4 * MiB, d('x'), digest => digest === d('e')).victims).toEqual([d('a')])
    release()
    l.unpin(d('c'))
    expect(l.isLeased(d('b'))).toBe(false)
    expect(l.isPinned(d('c'))).toBe(false)
    expect(l.planAdmission(0, d('x'), () => false)).toEqual({ victims: [], fits: true })
  })

  it('no quota admits everything', () => {
    const l = new CacheLedger()
    l.addPiece(d('a'), 0, 100 * MiB, 1)
    expect(l.planAdmission(1e12, d('b'), () => false)).toEqual({ victims: [], fits: true })
  })

  it('expires idle blobs past the TTL, sparing busy ones; a pin can lapse', () => {
    const c = clock()
    const l = new CacheLedger({ ttlMs: 60_000, now: c.now })
    l.addPiece(d('a'), 0, MiB, 1)
    l.addPiece(d('b'), 0, MiB, 1)
    l.addPiece(d('e'), 0, MiB, 1)
    l.pin(d('e'), 30_000)
    c.advance(59_000)
    l.touch(d('b'))
    expect(l.expired(() => false)).toEqual([])
    c.advance(2_000)
    expect(l.expired(() => false)).toEqual([d('a'), d('e')])
    expect(l.expired(digest => digest === d('a'))).toEqual([d('e')])
    expect(new CacheLedger({ ttlMs: 0 }).ttlMs).toBeUndefined()
  })

  it('a lease taken before any byte, and released after a forget, leaves nothing behind', () => {
    const l = new CacheLedger({ quotaBytes: MiB })
    const release = l.acquire(d('a'))
    l.addPiece(d('a'), 0, 4096, 1)
    l.forget(d('a'))
    expect(l.isLeased(d('a'))).toBe(true) // still downloading: a new piece of it stays protected
    release()
    release()
    expect(l.isLeased(d('a'))).toBe(false)
    expect(l.blobCount).toBe(0)
    expect(l.usedBytes).toBe(0)
  })

  it('loads blobs found on disk with their last use', () => {
    const c = clock()
    const l = new CacheLedger({ quotaBytes: 3 * MiB, now: c.now })
    l.load(d('a'), new Map([[0, MiB], [1, MiB]]), 2, 5)
    l.load(d('b'), new Map([[0, MiB]]), 1, 10)
    expect(l.lastUsed(d('a'))).toBe(5)
    expect(l.usedBytes).toBe(3 * MiB + sidecarBytes(2) + sidecarBytes(1))
    expect(l.planAdmission(0, '', () => false).victims).toEqual([d('a')])
  })
})
