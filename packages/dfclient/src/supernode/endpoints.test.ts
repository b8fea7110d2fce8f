import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { resolveDaemonConfig } from '../config.js'
import { SupernodeDiscovery, type Resolve } from './discovery.js'
import { addressUrl, parseSupernodeSpec } from './endpoints.js'

const silent = pino({ level: 'silent' })

describe('--supernode values', () => {
  const cases: Array<[string, unknown]> = [
    ['http://10.0.0.5:8002/', { kind: 'url', url: 'http://10.0.0.5:8002' }],
    ['https://sn.example.com', { kind: 'url', url: 'https://sn.example.com' }],
    ['dns+http://supernode-headless.damselfly.svc:8002', { kind: 'dns', scheme: 'http', host: 'supernode-headless.damselfly.svc', port: 8002, path: '' }],
    ['dns+https://sn.internal', { kind: 'dns', scheme: 'https', host: 'sn.internal', port: 443, path: '' }]
  ]
  for (const [text, want] of cases) it(`parses ${text}`, () => { expect(parseSupernodeSpec(text)).toEqual(want) })

  it('rejects other schemes, credentials and addresses for dns+', () => {
    for (const bad of ['ftp://x', 'http://u:p@x:1', 'dns+http://[::1]:8002', 'nonsense']) expect(typeof parseSupernodeSpec(bad)).toBe('string')
    expect(() => resolveDaemonConfig({ env: {}, flags: { supernode: ['dns+ftp://x'] } })).toThrow(/--supernode.*expected http:\/\/, https:\/\/, dns\+http:\/\//s)
  })

  it('accepts a mix in the daemon config', () => {
    const cfg = resolveDaemonConfig({ env: { DAMSELFLY_SUPERNODE: 'http://a:8002,dns+http://sn.svc:8002' }, flags: {} })
    expect(cfg.supernode.map(s => s.kind)).toEqual(['url', 'dns'])
  })

  it('builds one URL per resolved address (IPv6 bracketed)', () => {
    const spec = parseSupernodeSpec('dns+http://sn:8002') as Extract<ReturnType<typeof parseSupernodeSpec>, { kind: 'dns' }>
    expect([addressUrl(spec, '10.1.2.3'), addressUrl(spec, 'fd00::7')]).toEqual(['http://10.1.2.3:8002', 'http://[fd00::7]:8002'])
  })
})

describe('SupernodeDiscovery', () => {
  it('resolves names at start, follows changes, and keeps the last good set when a lookup fails', async () => {
    let answer: string[] | Error = ['10.0.0.2', '10.0.0.1']
    const resolve: Resolve = async () => { if (answer instanceof Error) throw answer; return answer }
    const d = new SupernodeDiscovery({ specs: [{ kind: 'url', url: 'http://static:1' }, { kind: 'dns', scheme: 'http', host: 'sn', port: 8002, path: '' }] }, { logger: silent, resolve })
    const seen: string[][] = []
    d.onChange(urls => seen.push(urls))
    expect(d.urls).toEqual(['http://static:1'])
    await d.start()
    // Sorted, so every dfclient lists them alike.
    expect(d.urls).toEqual(['http://static:1', 'http://10.0.0.1:8002', 'http://10.0.0.2:8002'])
    const live = d.live
    answer = new Error('SERVFAIL')
    await d.refresh()
    expect(d.urls).toHaveLength(3)
    answer = []
    await d.refresh()
    expect(d.urls).toHaveLength(3)
    answer = ['10.0.0.3']
    await d.refresh()
    expect(d.urls).toEqual(['http://static:1', 'http://10.0.0.3:8002'])
    expect(live).toEqual(d.urls)
    expect(seen).toHaveLength(2)
    d.stop()
  })

  it('bounds a lookup that hangs', async () => {
    const resolve: Resolve = async (_host, signal) => await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(new Error('timed out')) }) })
    const d = new SupernodeDiscovery({ specs: [{ kind: 'dns', scheme: 'http', host: 'sn', port: 1, path: '' }], timeoutMs: 50 }, { logger: silent, resolve })
    const began = Date.now()
    await d.start()
    expect(Date.now() - began).toBeLessThan(2_000)
    expect(d.urls).toEqual([])
    d.stop()
  })
})
