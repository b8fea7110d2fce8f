import { z } from 'zod'
import type { OptionSpec } from '@damselfly/proto'

/**
 * The preheat slice of the supernode configuration. Keys are flat (`preheatPlatforms`, not
 * `preheat.platforms`) because every key is also a flag and an env var (CONTRACTS.md).
 */
export const PREHEAT_OPTIONS: readonly OptionSpec[] = [
  { key: 'preheatAuthHeader', arg: 'HEADER', description: 'header that carries --preheat-token: "authorization" expects "Bearer TOKEN" (Harbor auth mode OAUTH); any other name expects the bare token in that header (Harbor auth mode CUSTOM, e.g. api-key)', defaultText: 'authorization' },
  { key: 'preheatPlatforms', arg: 'LIST', description: 'platforms a preheat picks from an image index: os/arch[/variant] (comma list or repeatable), or "all"', repeatable: true, defaultText: 'linux/amd64' },
  { key: 'preheatConcurrency', arg: 'N', description: 'blobs one preheat job fetches at once (Harbor\'s concurrent_count overrides it when > 0)', defaultText: '4' },
  { key: 'preheatTimeout', arg: 'DURATION', description: 'how long a preheat job may run (90s, 60m, 2h; Harbor\'s timeout overrides it when > 0)', defaultText: '60m' },
  { key: 'registryAuthFile', arg: 'FILE', description: 'Docker config.json ({"auths":{HOST:{"auth":base64(USER:PASS)}}}) with registry credentials for the supernode; --registry-auth entries win', defaultText: 'none' }
]

/** A platform filter: `all`, or a list of `os/arch[/variant]`. */
export type PlatformFilter = 'all' | readonly string[]

const PLATFORM_RE = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/

/** Parses `linux/amd64,linux/arm64/v8` or `all` (case-insensitive). */
export function parsePlatforms (items: readonly string[]): { ok: PlatformFilter } | { error: string } {
  const list = items.flatMap(i => i.split(',')).map(s => s.trim().toLowerCase()).filter(s => s !== '')
  if (list.length === 0) return { error: 'expected at least one platform' }
  if (list.includes('all')) return list.length === 1 ? { ok: 'all' } : { error: '"all" cannot be combined with other platforms' }
  const bad = list.filter(p => !PLATFORM_RE.test(p))
  if (bad.length > 0) return { error: `not a platform (os/arch[/variant]): ${bad.join(', ')}` }
  return { ok: [...new Set(list)] }
}

const DURATION_PART = /(\d+)(ms|s|m|h)/g
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses `90s`, `60m`, `1h30m`, `500ms` into milliseconds; undefined when it is not a duration. */
export function parseDuration (text: string): number | undefined {
  const t = text.trim()
  if (!/^(\d+(ms|s|m|h))+$/.test(t)) return undefined
  let ms = 0
  for (const m of t.matchAll(DURATION_PART)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  return Number.isSafeInteger(ms) ? ms : undefined
}

/** Longest job timeout accepted anywhere (config or a request): a day. */
export const MAX_PREHEAT_TIMEOUT_MS = 24 * 3_600_000

const platforms = z.preprocess(v => typeof v === 'string' ? [v] : v, z.array(z.string())).transform((items, ctx) => {
  const parsed = parsePlatforms(items)
  if ('error' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.error })
    return z.NEVER
  }
  return parsed.ok
})

const positiveInt = (max: number) => z.union([z.number(), z.string().trim().regex(/^\d+$/, 'expected a positive integer').transform(Number)])
  .pipe(z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`))

const duration = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v)
  if (ms === undefined || ms <= 0 || ms > MAX_PREHEAT_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', message: `expected a duration between 1s and 24h such as 90s, 60m or 2h, got ${JSON.stringify(v)}` })
    return z.NEVER
  }
  return ms
})

/** Header names as HTTP defines tokens, stored lower-case (Node lower-cases incoming header names). */
const headerName = z.string().trim().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not an HTTP header name').transform(s => s.toLowerCase())

/** Spread into the supernode's config object. */
export const preheatConfigShape = {
  preheatAuthHeader: headerName.default('authorization'),
  preheatPlatforms: platforms.default(['linux/amd64']),
  /** Blobs a job fetches at once; the back-to-source limit (16) bounds all jobs and pulls together. */
  preheatConcurrency: positiveInt(16).default(4),
  /** Milliseconds. */
  preheatTimeout: duration.default(3_600_000),
  registryAuthFile: z.string().min(1).optional()
}
