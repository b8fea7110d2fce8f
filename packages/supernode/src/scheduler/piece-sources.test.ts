import { describe, expect, it } from 'vitest'
import { HandoutLedger, MAX_SOURCES_PER_PIECE, rankPieceSources } from './piece-sources.js'

const seed = { peerId: 'Seed', addrs: ['/ip4/10.0.0.1/tcp/8003'] }
const peer = (id: string) => ({ peerId: id, addrs: [`/ip4/10.0.0.2/tcp/1/${id}`] })

describe('rankPieceSources', () => {
  const cases = [
    { name: 'no holders: only the seed', holders: [], requester: undefined, stats: {}, want: ['Seed'] },
    { name: 'requester excluded', holders: [peer('A'), peer('B')], requester: 'A', stats: {}, want: ['B', 'Seed'] },
    { name: 'least handed out first', holders: [peer('A'), peer('B')], requester: undefined, stats: { A: { count: 3, lastAt: 1 }, B: { count: 1, lastAt: 9 } }, want: ['B', 'A', 'Seed'] },
    { name: 'ties broken by least recent', holders: [peer('A'), peer('B')], requester: undefined, stats: { A: { count: 2, lastAt: 9 }, B: { count: 2, lastAt: 5 } }, want: ['B', 'A', 'Seed'] },
    { name: 'the seed listed as holder is not duplicated', holders: [peer('Seed'), peer('A')], requester: undefined, stats: {}, want: ['A', 'Seed'] }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const ranked = rankPieceSources({ holders: c.holders, requester: c.requester, seed, stats: new Map(Object.entries(c.stats)) })
      expect(ranked.map(s => s.peerId)).toEqual(c.want)
      expect(ranked.at(-1)?.seed).toBe(true)
      expect(ranked.slice(0, -1).every(s => !s.seed)).toBe(true)
    })
  }

  it('caps the list and keeps the seed last', () => {
    const holders = Array.from({ length: 20 }, (_, i) => peer(`P${i}`))
    const ranked = rankPieceSources({ holders, seed, stats: new Map() })
    expect(ranked).toHaveLength(MAX_SOURCES_PER_PIECE)
    expect(ranked.at(-1)?.peerId).toBe('Seed')
  })

  it('spreads load when the ledger records each first choice', () => {
    const ledger = new HandoutLedger()
    const holders = [peer('A'), peer('B'), peer('C')]
    const firsts: string[] = []
    for (let t = 1; t <= 6; t++) {
      const first = rankPieceSources({ holders, seed, stats: ledger.stats })[0]!
      firsts.push(first.peerId)
      ledger.record(first.peerId, t)
    }
    expect(firsts).toEqual(['A', 'B', 'C', 'A', 'B', 'C'])
  })
})
