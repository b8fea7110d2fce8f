import { expect, it } from 'vitest'
import { RecentCallers } from './recent-callers.js'

it('remembers peer ids for the peer TTL, bounded, and only valid ones', () => {
  let t = 0
  const c = new RecentCallers(() => t)
  c.note('12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
  expect(c.has('12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).toBe(true)
  t = 35_001
  expect(c.has('12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).toBe(false)
  expect(c.ids()).toEqual([])
})
