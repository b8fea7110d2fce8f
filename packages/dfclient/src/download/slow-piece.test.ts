import { describe, expect, it } from 'vitest'
import { PieceTimes, SLOW_PIECE_FACTOR, SLOW_PIECE_MIN_MS, SLOW_PIECE_UNKNOWN_MS } from './slow-piece.js'

describe('slow-piece rule', () => {
  it('waits SLOW_PIECE_UNKNOWN_MS before the first piece completed, then FACTOR × typical, never under MIN', () => {
    const t = new PieceTimes()
    expect(t.slowAfterMs()).toBe(SLOW_PIECE_UNKNOWN_MS)
    t.record(1_000)
    expect(t.slowAfterMs()).toBe(SLOW_PIECE_FACTOR * 1_000)
    const fast = new PieceTimes()
    fast.record(50)
    expect(fast.slowAfterMs()).toBe(SLOW_PIECE_MIN_MS)
  })

  it('retries a transfer past the threshold only when it would take longer to finish than a fresh fetch', () => {
    const t = new PieceTimes()
    t.record(1_000) // slow after 4 s
    expect(t.msUntilSlow(1_000, 0)).toBe(3_000)
    // Stalled (nothing received) or crawling: retry now.
    expect(t.msUntilSlow(4_000, 0)).toBe(0)
    expect(t.msUntilSlow(4_000, 0.5)).toBe(0) // 4 s more to go > 1 s typical
    // 90% there: 0.44 s to go beats a fresh 1 s fetch, so it is left alone and looked at again soon.
    const wait = t.msUntilSlow(4_000, 0.9)
    expect(wait).toBeGreaterThan(0)
    expect(wait).toBeLessThan(1_000)
  })
})
