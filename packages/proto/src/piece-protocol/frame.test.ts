import { describe, expect, test } from 'vitest'
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './frame.js'

describe('frame codec', () => {
  test('round-trips in one chunk and leaves the trailing bytes', () => {
    const frame = encodeFrame({ taskId: 'x', index: 7 })
    const tail = new Uint8Array([1, 2, 3])
    const all = new Uint8Array(frame.byteLength + 3)
    all.set(frame)
    all.set(tail, frame.byteLength)
    const out = new FrameDecoder().push(all)
    expect(out?.value).toEqual({ taskId: 'x', index: 7 })
    expect([...(out?.rest ?? [])]).toEqual([1, 2, 3])
  })

  test('decodes when split byte by byte, including a 2-byte length prefix', () => {
    const value = { pad: 'p'.repeat(300) }
    const frame = encodeFrame(value)
    expect(frame[0]! & 0x80).toBe(0x80)
    const decoder = new FrameDecoder()
    let out
    for (let i = 0; i < frame.byteLength; i++) {
      out = decoder.push(frame.subarray(i, i + 1))
      if (i < frame.byteLength - 1) expect(out).toBeUndefined()
    }
    expect(out?.value).toEqual(value)
  })

  const bad = [
    { name: 'oversize length', bytes: [0xff, 0xff, 0x7f] },
    { name: 'length prefix too long', bytes: [0x80, 0x80, 0x80, 0x80, 0x01] },
    { name: 'not JSON', bytes: [3, 0x61, 0x62, 0x63] },
    { name: 'invalid UTF-8', bytes: [2, 0xc3, 0x28] }
  ]
  for (const c of bad) {
    test(`rejects ${c.name}`, () => {
      expect(() => new FrameDecoder().push(new Uint8Array(c.bytes))).toThrow(expect.objectContaining({ code: 'DF_ERR_PROTOCOL' }))
    })
  }

  test('refuses to encode an oversize frame', () => {
    expect(() => encodeFrame({ pad: 'x'.repeat(MAX_FRAME_BYTES) })).toThrow(expect.objectContaining({ code: 'DF_ERR_PROTOCOL' }))
  })
})
