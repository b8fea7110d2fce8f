import { describe, expect, test } from 'vitest'
import { z } from 'zod'
import { envName, flagName, resolveConfig, type OptionSpec } from './layered-config.js'
import { canonicalRegistryHost, parseRegistryEntry, registryBaseUrl } from './registry-map.js'
import { parseSize } from './size.js'

const specs: OptionSpec[] = [
  { key: 'dataDir', arg: 'DIR', description: 'd' },
  { key: 'listen', arg: 'HOST:PORT', description: 'l' },
  { key: 'registry', arg: 'HOST=URL', description: 'r', repeatable: true }
]
const schema = z.object({
  dataDir: z.string().default('/var/lib/x'),
  listen: z.string().regex(/^[^:]+:\d+$/).default('0.0.0.0:1'),
  registry: z.array(z.string()).default([])
}).strict()

describe('resolveConfig', () => {
  test('names derive from the key', () => {
    expect(flagName('dataDir')).toBe('--data-dir')
    expect(envName('dataDir')).toBe('DAMSELFLY_DATA_DIR')
  })

  test('precedence is default < file < env < flag, and the result is frozen', () => {
    const cfg = resolveConfig(schema, specs, {
      file: { path: 'c.yaml', text: 'dataDir: /file\nlisten: 1.2.3.4:5\nregistry: [a=http://a]' },
      env: { DAMSELFLY_LISTEN: '6.7.8.9:10', DAMSELFLY_REGISTRY: 'b=http://b, c=http://c' },
      flags: { listen: '0.0.0.0:99' }
    })
    expect(cfg).toEqual({ dataDir: '/file', listen: '0.0.0.0:99', registry: ['b=http://b', 'c=http://c'] })
    expect(Object.isFrozen(cfg)).toBe(true)
    expect(Object.isFrozen(cfg.registry)).toBe(true)
  })

  test('every problem is reported with where it came from', () => {
    let message = ''
    try {
      resolveConfig(schema, specs, {
        file: { path: 'c.yaml', text: 'bogus: 1\ndataDir: 7' },
        env: { DAMSELFLY_LISTEN: 'nope' },
        flags: {}
      })
    } catch (err) {
      expect((err as { code: string }).code).toBe('DF_ERR_CONFIG_INVALID')
      message = (err as Error).message
    }
    expect(message).toContain('c.yaml: bogus: unknown key')
    expect(message).toContain('c.yaml: dataDir')
    expect(message).toContain('env DAMSELFLY_LISTEN')
  })

  test('invalid YAML is an error, not a crash', () => {
    expect(() => resolveConfig(schema, specs, { file: { path: 'c.yaml', text: 'a: [' }, env: {}, flags: {} }))
      .toThrow(/not valid YAML/)
  })
})

describe('sizes and registries', () => {
  const sizes = [
    ['150MiB', { bytes: 150 * 1024 ** 2 }], ['20GiB', { bytes: 20 * 1024 ** 3 }], ['500MB', { bytes: 500e6 }],
    ['1024', { bytes: 1024 }], ['30%', { percent: 30 }], ['0%', undefined], ['101%', undefined], ['12 parsecs', undefined], ['', undefined]
  ] as const
  for (const [text, want] of sizes) test(`parseSize(${JSON.stringify(text)})`, () => { expect(parseSize(text)).toEqual(want) })

  test('registry entries', () => {
    expect(parseRegistryEntry('127.0.0.1:5000=http://127.0.0.1:5000/')).toEqual({ host: '127.0.0.1:5000', url: 'http://127.0.0.1:5000' })
    expect(parseRegistryEntry('index.docker.io=https://mirror.example')).toEqual({ host: 'docker.io', url: 'https://mirror.example' })
    expect(parseRegistryEntry('nohost')).toMatch(/HOST=URL/)
    expect(parseRegistryEntry('h=ftp://x')).toMatch(/http or https/)
    expect(parseRegistryEntry('h=https://u:p@x')).toMatch(/credentials/)
  })

  test('base URLs', () => {
    const entries = new Map([['127.0.0.1:5000', 'http://127.0.0.1:5000']])
    expect(registryBaseUrl('127.0.0.1:5000', entries)).toBe('http://127.0.0.1:5000')
    expect(registryBaseUrl('Index.Docker.io', entries)).toBe('https://registry-1.docker.io')
    expect(registryBaseUrl('ghcr.io', entries)).toBe('https://ghcr.io')
    expect(canonicalRegistryHost('registry-1.docker.io')).toBe('docker.io')
  })
})
