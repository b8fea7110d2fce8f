import { describe, expect, test } from 'vitest'
import { Digester, parseDigest, sha256Of, tryParseDigest } from './digest.js'

const HEX64 = 'a'.repeat(64)

describe('tryParseDigest', () => {
  const valid = [`sha256:${HEX64}`, `sha512:${'0'.repeat(128)}`]
  const invalid = [
    '', 'sha256:', `sha256:${HEX64.slice(1)}`, `sha256:${HEX64}0`, `SHA256:${HEX64}`, `sha256:${'A'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`, `sha384:${'a'.repeat(96)}`, `sha256:${'g'.repeat(64)}`, `sha256:../${HEX64}`,
    `sha256:${HEX64}\n`, `sha256 :${HEX64}`, `sha256:${'a'.repeat(300)}`
  ]
  for (const v of valid) test(`accepts ${v.slice(0, 20)}…`, () => { expect(tryParseDigest(v)?.value).toBe(v) })
  for (const v of invalid) test(`rejects ${JSON.stringify(v.slice(0, 24))}`, () => { expect(tryParseDigest(v)).toBeUndefined() })
  test('parseDigest throws a coded error', () => {
    expect(() => parseDigest('nope')).toThrow(expect.objectContaining({ code: 'DF_ERR_DIGEST_INVALID', httpStatus: 400 }))
  })
})

describe('Digester', () => {
  test('incremental hash equals one-shot hash', () => {
    const data = new Uint8Array(100_000).map((_, i) => (i * 31) & 0xff)
    const d = new Digester()
    d.update(data.subarray(0, 33_333))
    d.update(data.subarray(33_333))
    expect(d.bytes).toBe(100_000)
    expect(d.digest()).toBe(sha256Of(data))
  })
  test('known vector', () => {
    expect(sha256Of(new TextEncoder().encode('hello world')))
      .toBe('sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9')
  })
})
