import { z } from 'zod'
import { canonicalRegistryHost, parseRegistryEntry, resolveConfig, type ConfigSources, type OptionSpec } from '@damselfly/proto'
import { parseDuration, PREHEAT_OPTIONS, preheatConfigShape } from './preheat/config.js'

/**
 * The supernode's options: one list drives the flags, YAML keys, env vars and --help (CONTRACTS.md),
 * one zod schema validates and normalises them. Defaults live in the schema; `defaultText` only shows
 * them in --help, so commander never injects a default that would shadow an env var or file value.
 */
export const SUPERNODE_OPTIONS: readonly OptionSpec[] = [
  { key: 'config', arg: 'FILE', description: 'YAML config file (keys are the camelCase flag names)', defaultText: 'none' },
  { key: 'listen', arg: 'HOST:PORT', description: 'HTTP listen address: peer API, /metrics, /livez, /readyz, dashboard at / (port 0 = ephemeral)', defaultText: '0.0.0.0:8002' },
  { key: 'p2pListen', arg: 'MULTIADDR', description: 'libp2p listen address (repeatable; tcp/0 = ephemeral)', repeatable: true, defaultText: '/ip4/0.0.0.0/tcp/8003' },
  { key: 'p2pAnnounce', arg: 'MULTIADDR', description: 'address peers should dial (repeatable)', repeatable: true, defaultText: 'the listen addresses' },
  { key: 'p2pEncrypters', arg: 'LIST', description: 'libp2p connection encrypters in order of preference: tls, noise (comma list or repeatable)', repeatable: true, defaultText: 'tls,noise' },
  { key: 'dataDir', arg: 'DIR', description: 'LevelDB metadata, piece store and peer key', defaultText: '/var/lib/damselfly/supernode' },
  { key: 'token', arg: 'SECRET', description: 'cluster secret dfclients must send as "Authorization: Bearer SECRET" to /api/v1 (unset = open, warned)', defaultText: 'none' },
  { key: 'preheatToken', arg: 'SECRET', description: 'token Harbor must send to the preheat APIs (unset = open)', defaultText: 'none' },
  { key: 'registry', arg: 'HOST=URL', description: 'how to reach a registry host (repeatable), e.g. 127.0.0.1:5000=http://127.0.0.1:5000', repeatable: true, defaultText: 'docker.io=https://registry-1.docker.io, others https://HOST' },
  { key: 'registryAuth', arg: 'HOST=USER:PASS', description: 'credentials the supernode itself uses for a registry (repeatable)', repeatable: true, defaultText: 'none' },
  ...PREHEAT_OPTIONS,
  { key: 'upstreamTimeout', arg: 'DURATION', description: 'upstream registry: longest wait for response headers, and longest pause inside a body, before a retry (5xx, 429, resets and stalls are retried 3 times with backoff; a broken body resumes with Range)', defaultText: '30s' },
  { key: 'requestTimeout', arg: 'DURATION', description: 'time a client has to send a whole HTTP request (slow senders are cut off with 408)', defaultText: '30s' },
  { key: 'maxConcurrentRequests', arg: 'N', description: 'HTTP requests served at once, long-polls included; 16x as many more wait (120 s at most), then get 429 with Retry-After', defaultText: '8192' },
  { key: 'logLevel', arg: 'LEVEL', description: 'pino log level: fatal, error, warn, info, debug, trace, silent', defaultText: 'info' }
]

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** A list option: accepts one string or an array, and splits comma lists (`--p2p-encrypters tls,noise`). */
function list<T extends z.ZodType> (item: T, splitCommas: boolean) {
  return z.preprocess(v => {
    const arr = typeof v === 'string' ? [v] : v
    if (!splitCommas || !Array.isArray(arr)) return arr
    return arr.flatMap(x => typeof x === 'string' ? x.split(',').map(s => s.trim()).filter(s => s !== '') : [x])
  }, z.array(item))
}

const hostPort = z.string().transform((text, ctx) => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(text.trim())
  const port = m === null ? NaN : Number(m[2])
  if (m === null || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT (port 0-65535), got ${JSON.stringify(text)}` })
    return z.NEVER
  }
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port }
})

const multiaddrText = z.string().regex(/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}(\/.*)?$/, 'expected a TCP multiaddr such as /ip4/0.0.0.0/tcp/8003')

const registryEntries = list(z.string(), false).transform((entries, ctx) => {
  const out: Record<string, string> = {}
  entries.forEach((entry, i) => {
    const parsed = parseRegistryEntry(entry)
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed, path: [i] })
    else out[parsed.host] = parsed.url
  })
  return out
})

const registryAuthEntries = list(z.string(), false).transform((entries, ctx) => {
  const out: Record<string, { username: string, password: string }> = {}
  entries.forEach((entry, i) => {
    const m = /^([^=\s]+)=([^:]+):(.*)$/.exec(entry)
    if (m === null) ctx.addIssue({ code: 'custom', message: 'expected HOST=USER:PASS', path: [i] })
    else out[canonicalRegistryHost(m[1] as string)] = { username: m[2] as string, password: m[3] as string }
  })
  return out
})

/** A duration of at least a second (`500ms` is refused), in milliseconds. */
const seconds = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v)
  if (ms === undefined || ms < 1000 || ms > 3_600_000) {
    ctx.addIssue({ code: 'custom', message: `expected a duration between 1s and 1h such as 5s or 30s, got ${JSON.stringify(v)}` })
    return z.NEVER
  }
  return ms
})

export const supernodeConfigSchema = z.object({
  listen: hostPort.default({ host: '0.0.0.0', port: 8002 }),
  p2pListen: list(multiaddrText, false).pipe(z.array(z.string()).min(1)).default(['/ip4/0.0.0.0/tcp/8003']),
  p2pAnnounce: list(multiaddrText, false).default([]),
  p2pEncrypters: list(z.enum(['tls', 'noise']), true)
    .pipe(z.array(z.enum(['tls', 'noise'])).min(1).refine(a => new Set(a).size === a.length, 'each encrypter may appear once'))
    .default(['tls', 'noise']),
  dataDir: z.string().min(1).default('/var/lib/damselfly/supernode'),
  token: z.string().min(1).optional(),
  preheatToken: z.string().min(1).optional(),
  registry: registryEntries.default({}),
  registryAuth: registryAuthEntries.default({}),
  ...preheatConfigShape,
  /** Milliseconds. */
  upstreamTimeout: seconds.default(30_000),
  /** Milliseconds. */
  requestTimeout: seconds.default(30_000),
  maxConcurrentRequests: z.union([z.number(), z.string().trim().regex(/^\d+$/, 'expected a positive integer').transform(Number)])
    .pipe(z.number().int().min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000')).default(8192),
  logLevel: z.enum(LOG_LEVELS).default('info')
}).strict()

/** The validated, deep-frozen supernode configuration. */
export type SupernodeConfig = z.infer<typeof supernodeConfigSchema>
/** What callers (tests, embedders) may write: the raw, pre-validation shape. */
export type SupernodeConfigInput = z.input<typeof supernodeConfigSchema>

/** Resolves default < file < env < flags; throws one DF_ERR_CONFIG_INVALID listing every problem. */
export function loadSupernodeConfig (sources: ConfigSources): SupernodeConfig {
  return resolveConfig(supernodeConfigSchema, SUPERNODE_OPTIONS, sources)
}

/** Validates a programmatic config (tests, embedding) with the same rules as the CLI. */
export function supernodeConfig (input: SupernodeConfigInput): SupernodeConfig {
  return resolveConfig(supernodeConfigSchema, SUPERNODE_OPTIONS, { env: {}, flags: input as Record<string, unknown> })
}
