import { describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from './config.js'

const base = { flags: { supernode: ['http://sn:65100'] } }

describe('dfclient daemon upload limits', () => {
  it('defaults to 8 concurrent uploads and no rate cap', () => {
    const cfg = resolveDaemonConfig({ ...base, env: {} })
    expect(cfg.uploadConcurrency).toBe(8)
    expect(cfg.uploadRate).toBeUndefined()
  })

  it('reads YAML, env and flags', () => {
    expect(resolveDaemonConfig({ ...base, env: {}, file: { path: 'c.yaml', text: 'uploadConcurrency: 3\nuploadRate: 50MiB' } })).toMatchObject({ uploadConcurrency: 3, uploadRate: 50 * 1024 ** 2 })
    expect(resolveDaemonConfig({ ...base, env: { DAMSELFLY_UPLOAD_CONCURRENCY: '4', DAMSELFLY_UPLOAD_RATE: '1Gbit' } })).toMatchObject({ uploadConcurrency: 4, uploadRate: 125e6 })
    expect(resolveDaemonConfig({ env: {}, flags: { ...base.flags, uploadConcurrency: '2', uploadRate: 'unlimited' } })).toMatchObject({ uploadConcurrency: 2, uploadRate: undefined })
  })

  it('reports bad values', () => {
    expect(() => resolveDaemonConfig({ env: {}, flags: { ...base.flags, uploadConcurrency: '0', uploadRate: '30%' } })).toThrow(/--upload-concurrency: must be at least 1[\s\S]*--upload-rate: not a rate/)
  })
})

describe('dfclient daemon cache quota and TTL', () => {
  it('defaults to 20% of the disk and a 24 h TTL, and parses sizes and durations', async () => {
    const { parseDuration } = await import('./config.js')
    expect(resolveDaemonConfig({ ...base, env: {} })).toMatchObject({ cacheSize: { percent: 20 }, cacheTtl: 86_400_000 })
    expect(resolveDaemonConfig({ ...base, env: { DAMSELFLY_CACHE_SIZE: '150MiB', DAMSELFLY_CACHE_TTL: '90m' } })).toMatchObject({ cacheSize: { bytes: 150 * 1024 ** 2 }, cacheTtl: 5_400_000 })
    expect(resolveDaemonConfig({ ...base, env: {}, file: { path: 'c.yaml', text: 'cacheTtl: 0' } }).cacheTtl).toBe(0)
    expect([parseDuration('7d'), parseDuration('500ms'), parseDuration('1.5h'), parseDuration('10'), parseDuration('x')]).toEqual([604_800_000, 500, 5_400_000, undefined, undefined])
    expect(() => resolveDaemonConfig({ env: {}, flags: { ...base.flags, cacheTtl: 'soon' } })).toThrow(/--cache-ttl: not a duration/)
  })
})
