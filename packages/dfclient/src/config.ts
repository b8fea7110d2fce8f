import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { canonicalRegistryHost, parseRegistryEntry, parseSize, resolveConfig, type ConfigSources, type OptionSpec, type SizeSpec } from '@damselfly/proto'
import { parseRate } from './p2p/upload-limiter.js'
import { parseSupernodeSpec, type SupernodeSpec } from './supernode/endpoints.js'

/**
 * The `dfclient daemon` options (CONTRACTS.md). Each spec yields a flag, a YAML key and an env var;
 * the zod schema below is the single source of truth for defaults and validation.
 */
export const DAEMON_OPTIONS: readonly OptionSpec[] = [
  { key: 'config', arg: 'FILE', description: 'YAML config file', defaultText: 'none' },
  { key: 'supernode', arg: 'URL', description: 'supernode base URL, or dns+http://NAME:PORT for every address NAME resolves to (re-resolved every 30 s); repeatable. Each blob is owned by one healthy supernode, chosen by rendezvous hashing', repeatable: true, defaultText: 'none (required)' },
  { key: 'token', arg: 'SECRET', description: 'cluster secret sent to the supernode as a Bearer token', defaultText: 'none' },
  { key: 'listen', arg: 'HOST:PORT', description: 'registry mirror (OCI pull API) plus /metrics, /livez, /readyz', defaultText: '127.0.0.1:65001' },
  { key: 'p2pListen', arg: 'MULTIADDR', description: 'libp2p listen address (repeatable)', repeatable: true, defaultText: '/ip4/0.0.0.0/tcp/65002' },
  { key: 'p2pAnnounce', arg: 'MULTIADDR', description: 'address peers should dial (repeatable)', repeatable: true, defaultText: 'listen addresses' },
  { key: 'p2pEncrypters', arg: 'LIST', description: 'libp2p connection encrypters in preference order: tls, noise (repeatable or comma-separated)', repeatable: true, defaultText: 'tls,noise' },
  { key: 'dataDir', arg: 'DIR', description: 'piece cache, metadata, peer key', defaultText: '/var/lib/damselfly/dfclient' },
  { key: 'registry', arg: 'HOST=URL', description: 'how to reach a registry host (repeatable), e.g. 127.0.0.1:5000=http://127.0.0.1:5000', repeatable: true, defaultText: 'docker.io=https://registry-1.docker.io, others https://HOST' },
  { key: 'defaultRegistry', arg: 'HOST', description: 'upstream for requests that carry no ns= query parameter', defaultText: 'docker.io' },
  { key: 'cacheSize', arg: 'SIZE', description: 'piece-cache quota: bytes (150MiB, 20GiB) or a share of the filesystem holding --data-dir (30%); least recently used blobs are evicted to stay under it', defaultText: '20%' },
  { key: 'cacheTtl', arg: 'DURATION', description: 'evict cached blobs unused for this long (90m, 24h, 7d; 0 = never)', defaultText: '24h' },
  { key: 'uploadConcurrency', arg: 'N', description: 'pieces served to other peers at once; up to 64 more wait (10 s at most), then the requester is told to try another source', defaultText: '8' },
  { key: 'uploadRate', arg: 'RATE', description: 'bytes per second over all uploads to other peers (50MiB, 100MB, 1Gbit; 0 or unlimited = no cap)', defaultText: 'unlimited' },
  { key: 'upstreamTimeout', arg: 'DURATION', description: 'upstream registry: longest wait for response headers, and longest pause inside a body, before a retry (5xx, 429, resets and stalls are retried 3 times with backoff; a broken blob body resumes with Range)', defaultText: '30s' },
  { key: 'requestTimeout', arg: 'DURATION', description: 'time a client has to send a whole request to the mirror (slow senders are cut off with 408)', defaultText: '30s' },
  { key: 'maxConcurrentRequests', arg: 'N', description: 'mirror requests served at once (each blob response holds a few MiB of buffers); 16x as many more, at least 1024, wait (120 s at most), then get 429 with Retry-After', defaultText: '32' },
  { key: 'accessCheckTtl', arg: 'DURATION', description: 'how long a proof of access (a HEAD of the blob upstream with the client\'s own credentials, required before cached or peer bytes are served) is reused per credential, registry, repository and blob; 0 = check every request', defaultText: '60s' },
  { key: 'logLevel', arg: 'LEVEL', description: 'pino log level', defaultText: 'info' }
]

/** A list option may come as a YAML array, a YAML string, or repeated flags; commas also split. */
const list = z.preprocess(
  v => (typeof v === 'string' ? [v] : v),
  z.array(z.string()).transform(a => a.flatMap(s => s.split(',')).map(s => s.trim()).filter(s => s !== ''))
)

const multiaddrList = list.superRefine((addrs, ctx) => {
  for (const [i, a] of addrs.entries()) {
    try { multiaddr(a) } catch { ctx.addIssue({ code: 'custom', path: [i], message: `not a multiaddr: ${JSON.stringify(a)}` }) }
  }
})

const hostPort = z.string().transform((s, ctx) => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s.trim())
  const port = Number(m?.[2])
  if (m === null || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT, got ${JSON.stringify(s)}` })
    return z.NEVER
  }
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port }
})

/** A `--supernode` value: an http(s) base URL or a `dns+http(s)://NAME:PORT` name (supernode/endpoints.ts). */
const supernodeSpec = z.string().transform((s, ctx): SupernodeSpec => {
  const spec = parseSupernodeSpec(s)
  if (typeof spec === 'string') {
    ctx.addIssue({ code: 'custom', message: spec })
    return z.NEVER
  }
  return spec
})

export const daemonConfigSchema = z.object({
  supernode: z.preprocess(v => v ?? [], list).pipe(z.array(supernodeSpec).min(1, 'required: at least one supernode URL (--supernode, DAMSELFLY_SUPERNODE or YAML supernode)')),
  token: z.string().min(1).optional(),
  listen: hostPort.default({ host: '127.0.0.1', port: 65001 } as never),
  p2pListen: multiaddrList.pipe(z.array(z.string()).min(1)).default(['/ip4/0.0.0.0/tcp/65002']),
  p2pAnnounce: multiaddrList.default([]),
  p2pEncrypters: list.pipe(z.array(z.enum(['tls', 'noise'])).min(1)).default(['tls', 'noise']),
  dataDir: z.string().min(1).default('/var/lib/damselfly/dfclient'),
  registry: list.transform((entries, ctx) => {
    const out: Array<{ host: string, url: string }> = []
    for (const [i, e] of entries.entries()) {
      const r = parseRegistryEntry(e)
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', path: [i], message: r })
      else out.push(r)
    }
    return out
  }).default([]),
  defaultRegistry: z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'expected a registry HOST[:PORT]').transform(canonicalRegistryHost).default('docker.io'),
  cacheSize: z.string().transform((s, ctx): SizeSpec => {
    const size = parseSize(s)
    if (size === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size (150MiB, 20GiB, 30%): ${JSON.stringify(s)}` })
      return z.NEVER
    }
    return size
  // 20%, not more: containerd keeps its own copy of every pulled image on the same disk, and the
  // kubelet starts deleting images at 85% disk usage (imageGCHighThresholdPercent).
  }).default({ percent: 20 } as never),
  /** Milliseconds; 0 = no TTL. */
  cacheTtl: z.union([z.number(), z.string()]).transform((v, ctx): number => {
    const ms = parseDuration(String(v))
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration (90s, 30m, 24h, 7d, 0): ${JSON.stringify(v)}` })
      return z.NEVER
    }
    return ms
  }).default(24 * 3600_000 as never),
  uploadConcurrency: z.union([z.number(), z.string().trim().regex(/^\d+$/, 'expected a positive integer').transform(Number)])
    .pipe(z.number().int().min(1, 'must be at least 1').max(1024, 'must be at most 1024')).default(8),
  /** Bytes per second; `undefined` = unlimited. */
  uploadRate: z.union([z.number(), z.string()]).transform((v, ctx): number | undefined => {
    const rate = parseRate(String(v))
    if (rate === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a rate in bytes per second (50MiB, 100MB, 1Gbit, unlimited): ${JSON.stringify(v)}` })
      return z.NEVER
    }
    return rate ?? undefined
  }).optional(),
  /** Milliseconds. */
  upstreamTimeout: duration('upstreamTimeout', 1000).default(30_000 as never),
  /** Milliseconds. */
  requestTimeout: duration('requestTimeout', 1000).default(30_000 as never),
  maxConcurrentRequests: z.union([z.number(), z.string().trim().regex(/^\d+$/, 'expected a positive integer').transform(Number)])
    .pipe(z.number().int().min(1, 'must be at least 1').max(100_000, 'must be at most 100000')).default(32),
  /** Milliseconds; 0 = every request is checked. */
  accessCheckTtl: duration('accessCheckTtl', 0).default(60_000 as never),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
}).strict()

/** A duration option in milliseconds, at least `minMs` (0 allowed only when `minMs` is 0). */
function duration (key: string, minMs: number) {
  return z.union([z.number(), z.string()]).transform((v, ctx): number => {
    const ms = parseDuration(String(v))
    if (ms === undefined || ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `${key}: not a duration${minMs > 0 ? ` of at least ${minMs} ms` : ''} (500ms, 30s, 5m${minMs === 0 ? ', 0' : ''}): ${JSON.stringify(v)}` })
      return z.NEVER
    }
    return ms
  })
}

export type DaemonConfig = z.infer<typeof daemonConfigSchema>

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `90s`, `30m`, `24h`, `7d`, `500ms` or a bare `0`; `undefined` when it is not a duration. */
export function parseDuration (text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) return undefined
  const value = Number(m[1])
  if (m[2] === undefined) return value === 0 ? 0 : undefined
  const ms = Math.round(value * (DURATION_UNITS[m[2]] as number))
  return Number.isSafeInteger(ms) ? ms : undefined
}

/** Validates every source at once; throws DF_ERR_CONFIG_INVALID listing each problem. */
export function resolveDaemonConfig (sources: ConfigSources): DaemonConfig {
  return resolveConfig(daemonConfigSchema, DAEMON_OPTIONS, sources)
}
