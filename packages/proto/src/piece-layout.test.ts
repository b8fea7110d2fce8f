import { describe, expect, test } from 'vitest'
import { BASE_PIECE_SIZE, layoutFor, MAX_PIECE_SIZE, pieceIndexAt, pieceRange, pieceSizeFor, pieceUnits, piecesWithin } from './piece-layout.js'

const MiB = 1024 * 1024

describe('pieceSizeFor', () => {
  const cases = [
    { name: 'empty blob', size: 0, pieceSize: 4 * MiB },
    { name: 'one byte', size: 1, pieceSize: 4 * MiB },
    { name: '256 MiB layer: 64 pieces of 4 MiB', size: 256 * MiB, pieceSize: 4 * MiB },
    { name: 'one byte past 64 pieces doubles', size: 256 * MiB + 1, pieceSize: 8 * MiB },
    { name: '1 GiB layer: 64 pieces of 16 MiB', size: 1024 * MiB, pieceSize: 16 * MiB },
    { name: '4 GiB: 64 pieces of 64 MiB', size: 4096 * MiB, pieceSize: 64 * MiB },
    { name: 'capped at 64 MiB', size: 100 * 1024 * MiB, pieceSize: 64 * MiB }
  ]
  for (const c of cases) {
    test(c.name, () => { expect(pieceSizeFor(c.size)).toBe(c.pieceSize) })
  }

  test('never more than 64 pieces below the cap, never above 64 MiB', () => {
    for (let size = 0; size < 40_000 * MiB; size += 123_456_789) {
      const layout = layoutFor(size)
      expect(layout.pieceSize).toBeGreaterThanOrEqual(BASE_PIECE_SIZE)
      expect(layout.pieceSize).toBeLessThanOrEqual(MAX_PIECE_SIZE)
      if (layout.pieceSize < MAX_PIECE_SIZE) expect(layout.pieceCount).toBeLessThanOrEqual(64)
      // Never larger than it must be: half the size would need more than 64 pieces.
      if (layout.pieceSize > BASE_PIECE_SIZE) expect(Math.ceil(size / (layout.pieceSize / 2))).toBeGreaterThan(64)
    }
  })

  test('rejects negative and fractional sizes', () => {
    expect(() => pieceSizeFor(-1)).toThrow(RangeError)
    expect(() => pieceSizeFor(1.5)).toThrow(RangeError)
  })
})

describe('budgets in bytes', () => {
  test('a piece counts its size in 4 MiB units, at least one', () => {
    expect(pieceUnits(1)).toBe(1)
    expect(pieceUnits(4 * MiB)).toBe(1)
    expect(pieceUnits(16 * MiB)).toBe(4)
    expect(pieceUnits(64 * MiB)).toBe(16)
  })
  test('a 4-unit budget is 4 pieces of 4 MiB, 2 of 8, 1 of 16 and still 1 of 64', () => {
    expect([4, 8, 16, 32, 64].map(m => piecesWithin(4, m * MiB))).toEqual([4, 2, 1, 1, 1])
    expect([4, 8, 16, 32, 64].map(m => piecesWithin(32, m * MiB))).toEqual([32, 16, 8, 4, 2])
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
