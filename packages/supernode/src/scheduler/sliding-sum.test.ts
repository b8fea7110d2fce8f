import { describe, expect, it } from 'vitest'
import { SlidingSum } from './sliding-sum.js'

describe('SlidingSum (30 s window in 10 buckets)', () => {
  const cases = [
    { name: 'sums samples inside the window', samples: [[0, 5], [1_000, 7], [29_000, 1]], at: 29_999, sum: 13 },
    { name: 'drops a bucket once the window has moved past it', samples: [[0, 5], [3_000, 7]], at: 30_000, sum: 7 },
    { name: 'empty after a quiet window', samples: [[0, 5]], at: 60_000, sum: 0 }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const s = new SlidingSum(30_000, 10)
      for (const [at, v] of c.samples) s.add(v!, at!)
      expect(s.sum(c.at)).toBe(c.sum)
    })
  }

  it('reports a per-second rate over the window', () => {
    const s = new SlidingSum(30_000, 10)
    for (let t = 0; t < 300_000; t += 100) s.add(300, t)
    // 300 bytes every 100 ms is 3,000 bytes/s.
    expect(s.perSecond(299_999)).toBeCloseTo(3_000, -1)
  })
})
