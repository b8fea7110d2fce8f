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
