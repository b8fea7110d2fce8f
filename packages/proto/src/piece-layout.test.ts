import { describe, expect, test } from 'vitest'
import { BASE_PIECE_SIZE, layoutFor, MAX_PIECE_SIZE, pieceIndexAt, pieceRange, pieceSizeFor } from './piece-layout.js'

const MiB = 1024 * 1024

describe('pieceSizeFor', () => {
  const cases = [
    { name: 'empty blob', size: 0, pieceSize: 4 * MiB },
    { name: 'one byte', size: 1, pieceSize: 4 * MiB },
    { name: '256 MiB layer: 64 pieces of 4 MiB', size: 256 * MiB, pieceSize: 4 * MiB },
    { name: 'exactly 500 pieces of 4 MiB', size: 500 * 4 * MiB, pieceSize: 4 * MiB },
    { name: 'one byte past 500 pieces doubles', size: 500 * 4 * MiB + 1, pieceSize: 8 * MiB },
    { name: '10 GiB → 32 MiB pieces', size: 10 * 1024 * MiB, pieceSize: 32 * MiB },
    { name: 'capped at 64 MiB', size: 100 * 1024 * MiB, pieceSize: 64 * MiB }
  ]
  for (const c of cases) {
    test(c.name, () => { expect(pieceSizeFor(c.size)).toBe(c.pieceSize) })
  }

  test('never more than 500 pieces below the cap, never above 64 MiB', () => {
    for (let size = 0; size < 40_000 * MiB; size += 123_456_789) {
      const layout = layoutFor(size)
      expect(layout.pieceSize).toBeGreaterThanOrEqual(BASE_PIECE_SIZE)
      expect(layout.pieceSize).toBeLessThanOrEqual(MAX_PIECE_SIZE)
      if (layout.pieceSize < MAX_PIECE_SIZE) expect(layout.pieceCount).toBeLessThanOrEqual(500)
    }
  })

  test('rejects negative and fractional sizes', () => {
    expect(() => pieceSizeFor(-1)).toThrow(RangeError)
    expect(() => pieceSizeFor(1.5)).toThrow(RangeError)
  })
})

describe('pieceRange', () => {
  const layout = layoutFor(10 * MiB + 5)
  test('pieces tile the blob exactly', () => {
    expect(layout.pieceCount).toBe(3)
    let next = 0
    for (let i = 0; i < layout.pieceCount; i++) {
      const r = pieceRange(layout, i)
      expect(r.start).toBe(next)
      next = r.end
    }
    expect(next).toBe(layout.size)
    expect(pieceRange(layout, 2).length).toBe(2 * MiB + 5)
  })
  test('out-of-range index throws', () => {
    expect(() => pieceRange(layout, 3)).toThrow(RangeError)
    expect(() => pieceRange(layout, -1)).toThrow(RangeError)
  })
  test('pieceIndexAt maps offsets to pieces', () => {
    expect(pieceIndexAt(layout, 0)).toBe(0)
    expect(pieceIndexAt(layout, 4 * MiB - 1)).toBe(0)
    expect(pieceIndexAt(layout, 4 * MiB)).toBe(1)
    expect(pieceIndexAt(layout, layout.size - 1)).toBe(2)
  })
})
