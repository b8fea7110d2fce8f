import { describe, expect, it } from 'vitest'
import { supernodeConfig } from '../config.js'
import { parseDuration, parsePlatforms } from './config.js'

describe('preheat configuration', () => {
  const durations: Array<[string, number | undefined]> = [['90s', 90_000], ['60m', 3_600_000], ['1h30m', 5_400_000], ['500ms', 500], ['10', undefined], ['1d', undefined], ['', undefined]]
  for (const [text, ms] of durations) it(`parseDuration(${JSON.stringify(text)})`, () => { expect(parseDuration(text)).toBe(ms) })

  it('platform lists', () => {
    expect(parsePlatforms(['linux/amd64,Linux/ARM64/v8'])).toEqual({ ok: ['linux/amd64', 'linux/arm64/v8'] })
    expect(parsePlatforms(['all'])).toEqual({ ok: 'all' })
    expect(parsePlatforms(['all', 'linux/amd64'])).toEqual({ error: expect.stringMatching(/cannot be combined/) })
    expect(parsePlatforms(['linux'])).toEqual({ error: expect.stringMatching(/not a platform/) })
  })

  it('defaults, and every bad value reported with its key', () => {
    const c = supernodeConfig({})
    expect(c).toMatchObject({ preheatAuthHeader: 'authorization', preheatPlatforms: ['linux/amd64'], preheatConcurrency: 4, preheatTimeout: 3_600_000 })
    expect(supernodeConfig({ preheatAuthHeader: 'Api-Key', preheatPlatforms: 'all', preheatConcurrency: '8', preheatTimeout: '90s' } as never))
      .toMatchObject({ preheatAuthHeader: 'api-key', preheatPlatforms: 'all', preheatConcurrency: 8, preheatTimeout: 90_000 })
    let message = ''
    try {
      supernodeConfig({ preheatAuthHeader: 'bad header', preheatPlatforms: ['x'], preheatConcurrency: '0', preheatTimeout: '2d' } as never)
    } catch (err) {
      message = (err as Error).message
    }
    for (const key of ['preheatAuthHeader', 'preheatPlatforms', 'preheatConcurrency', 'preheatTimeout']) expect(message).toContain(`--${key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)}`)
  })
})
