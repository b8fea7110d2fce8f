import { describe, expect, it } from 'vitest'
import { parseRange } from './range.js'

describe('parseRange on a 2048-byte blob', () => {
  const cases: Array<{ header: string | undefined, want: unknown }> = [
    { header: undefined, want: { type: 'full' } },
    { header: 'bytes=500-1499', want: { type: 'partial', start: 500, end: 1499 } },
    { header: 'bytes=500-', want: { type: 'partial', start: 500, end: 2047 } },
    { header: 'bytes=-500', want: { type: 'partial', start: 1548, end: 2047 } },
    { header: 'bytes=-5000', want: { type: 'partial', start: 0, end: 2047 } },
    { header: 'bytes=2000-5000', want: { type: 'partial', start: 2000, end: 2047 } },
    { header: 'bytes=0-0', want: { type: 'partial', start: 0, end: 0 } },
    { header: 'bytes=500-0', want: { type: 'unsatisfiable' } },
    { header: 'bytes=5000-10000', want: { type: 'unsatisfiable' } },
    { header: 'bytes=2048-', want: { type: 'unsatisfiable' } },
    { header: 'bytes=-0', want: { type: 'unsatisfiable' } },
    { header: 'bytes=0-1,5-6', want: { type: 'full' } },
    { header: 'items=0-1', want: { type: 'full' } },
    { header: 'bytes=abc', want: { type: 'full' } },
    { header: 'bytes=-', want: { type: 'full' } }
  ]
  for (const c of cases) {
    it(String(c.header), () => { expect(parseRange(c.header, 2048)).toEqual(c.want) })
  }
  it('anything on an empty blob is unsatisfiable', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ type: 'unsatisfiable' })
    expect(parseRange('bytes=-1', 0)).toEqual({ type: 'unsatisfiable' })
  })
})
