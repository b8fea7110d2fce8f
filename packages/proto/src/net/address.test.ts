import { describe, expect, it } from 'vitest'
import { isPublicAddress, isPublicHostname, parseIpv6, REGISTRY_HOST_RE } from './address.js'

describe('isPublicAddress', () => {
  const cases: Array<[string, boolean]> = [
    ['8.8.8.8', true], ['1.1.1.1', true], ['93.184.216.34', true],
    ['127.0.0.1', false], ['127.255.0.9', false], ['10.1.2.3', false], ['172.16.0.1', false], ['172.31.255.255', false],
    ['172.32.0.1', true], ['192.168.1.1', false], ['169.254.169.254', false], ['100.64.0.1', false], ['0.0.0.0', false],
    ['224.0.0.1', false], ['255.255.255.255', false], ['192.0.2.1', false],
    ['::1', false], ['::', false], ['fe80::1', false], ['fd00::1', false], ['fc00::1', false], ['ff02::1', false],
    ['::ffff:127.0.0.1', false], ['::ffff:169.254.169.254', false], ['::ffff:8.8.8.8', true], ['64:ff9b::a9fe:a9fe', false],
    ['2002:7f00:1::', false], ['2001:db8::1', false], ['2606:4700:4700::1111', true], ['[2606:4700:4700::1111]', true],
    ['not-an-ip', false], ['1.2.3', false], ['1.2.3.256', false], ['1::2::3', false]
  ]
  it.each(cases)('%s → %s', (ip, expected) => { expect(isPublicAddress(ip)).toBe(expected) })
})

describe('isPublicHostname (URL-normalised hostnames)', () => {
  const cases: Array<[string, boolean]> = [
    ['registry-1.docker.io', true], ['ghcr.io', true], ['localhost', false], ['foo.localhost', false], ['LOCALHOST.', false],
    [new URL('http://2130706433/').hostname, false], [new URL('http://0x7f000001/').hostname, false], [new URL('http://127.1/').hostname, false],
    [new URL('http://[::1]/').hostname, false], [new URL('http://169.254.169.254/').hostname, false], ['exa_mple.com', false]
  ]
  it.each(cases)('%s → %s', (host, expected) => { expect(isPublicHostname(host)).toBe(expected) })
})

it('parses IPv6 forms', () => {
  expect(parseIpv6('::1')?.at(15)).toBe(1)
  expect(parseIpv6('1:2:3:4:5:6:7:8')).toHaveLength(16)
  expect(parseIpv6('1:2:3:4:5:6:7')).toBeUndefined()
  expect(parseIpv6('::ffff:1.2.3.4')?.slice(12)).toEqual([1, 2, 3, 4])
})

it('REGISTRY_HOST_RE accepts hosts and ports only', () => {
  for (const ok of ['docker.io', '127.0.0.1:5000', 'a-b.c', '[::1]:5000']) expect(REGISTRY_HOST_RE.test(ok)).toBe(true)
  for (const bad of ['', 'a/b', 'user@host', 'host:port', 'host:1:2', '-a.b', 'a..b', 'a b', 'host?x']) expect(REGISTRY_HOST_RE.test(bad)).toBe(false)
})

describe('registryTargetPolicy', () => {
  const resolve = (answers: Record<string, string[]>) => (host: string, cb: (err: Error | null, a: Array<{ address: string, family: number }>) => void): void => {
    cb(null, (answers[host] ?? []).map(address => ({ address, family: address.includes(':') ? 6 : 4 })))
  }
  it('allows configured origins whatever their address, and public targets only otherwise', async () => {
    const { registryTargetPolicy } = await import('./registry-policy.js')
    const p = registryTargetPolicy(['http://127.0.0.1:5000', 'https://harbor.internal'], resolve({ 'harbor.internal': ['10.0.0.5'], 'evil.example': ['169.254.169.254'], 'mixed.example': ['10.0.0.1', '8.8.8.8'] }))
    expect(() => { p.check('http://127.0.0.1:5000/v2/') }).not.toThrow()
    for (const bad of ['http://127.0.0.1:5001/v2/', 'http://169.254.169.254/latest', 'http://[::1]/', 'http://localhost/', 'http://2130706433/', 'file:///etc/passwd']) {
      expect(() => { p.check(bad) }, bad).toThrow(expect.objectContaining({ code: 'DF_ERR_REGISTRY_NOT_ALLOWED' }))
    }
    expect(() => { p.check('https://registry-1.docker.io/v2/') }).not.toThrow()
    const look = async (host: string): Promise<unknown> => await new Promise((resolve, reject) => { p.lookup(host, { all: true }, (err, a) => { if (err !== null) reject(err); else resolve(a) }) })
    await expect(look('harbor.internal')).resolves.toEqual([{ address: '10.0.0.5', family: 4 }])
    await expect(look('evil.example')).rejects.toMatchObject({ code: 'DF_ERR_REGISTRY_NOT_ALLOWED' })
    await expect(look('mixed.example')).resolves.toEqual([{ address: '8.8.8.8', family: 4 }])
  })
})
