import { z } from 'zod'
import { API_LIMITS } from '@damselfly/proto'
import { MAX_PREHEAT_TIMEOUT_MS, parsePlatforms, type PlatformFilter } from '../config.js'
import type { PreheatScope } from '../job.js'

/*
 * The bodies Harbor sends (PROTOCOLS.md §1.3–1.5). Objects are not strict: Harbor versions add keys
 * (2.13 added scope and cluster ids), and a provider that rejects a key it does not use would break
 * on the next Harbor upgrade. Every value we use is checked, with its path in the error.
 */

const url = z.string().min(1).max(API_LIMITS.maxUrlLength)
/** Harbor drops non-string header values; so do we, rather than fail the whole request. */
const headers = z.record(z.string().max(256), z.unknown()).nullish()
  .transform(h => Object.fromEntries(Object.entries(h ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length <= API_LIMITS.maxHeaderValueLength)))

/**
 * Harbor's scope: "" when the policy has none (the manager's default, `single_seed_peer`), and
 * Harbor 2.12's own `single_peer`, which it passed through unchecked, meaning the same.
 */
const scope = z.string().nullish().transform((s, ctx): PreheatScope => {
  const v = s ?? ''
  if (v === '' || v === 'single_peer' || v === 'single_seed_peer') return 'single_seed_peer'
  if (v === 'all_seed_peers' || v === 'all_peers') return v
  ctx.addIssue({ code: 'custom', message: `unknown scope ${JSON.stringify(v)}: expected single_seed_peer, all_seed_peers or all_peers` })
  return z.NEVER
})

/** Damselfly's extension: `args.platform` as `os/arch[,os/arch…]` or `all`; absent = the configured default. */
const platform = z.string().max(1024).nullish().transform((s, ctx): PlatformFilter | undefined => {
  if (s === undefined || s === null || s.trim() === '') return undefined
  const parsed = parsePlatforms([s])
  if ('error' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.error })
    return z.NEVER
  }
  return parsed.ok
})

// POST /oapi/v1/jobs (Harbor ≥ 2.12).
export const dragonflyCreateJob = z.object({
  type: z.literal('preheat', { message: 'only "preheat" jobs are supported' }),
  args: z.object({
    // Harbor always sends "image", even for CNAI artifacts; Dragonfly's "file" preheats are not ours.
    type: z.literal('image', { message: 'only "image" preheats are supported' }),
    url,
    tag: z.string().nullish(),
    filtered_query_params: z.string().nullish(),
    headers,
    scope,
    platform,
    concurrent_count: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullish(),
    /** Go time.Duration: nanoseconds; 0 = the default. */
    timeout: z.number().int().nonnegative().max(MAX_PREHEAT_TIMEOUT_MS * 1_000_000, 'at most 24h').nullish()
  }),
  // One implicit cluster: the ids Harbor 2.13+ may send are accepted and ignored.
  scheduler_cluster_ids: z.array(z.number().int().nonnegative()).nullish()
})
export type DragonflyCreateJob = z.infer<typeof dragonflyCreateJob>

// POST /preheats (Harbor ≤ 2.11): the PreheatImage itself.
export const legacyCreatePreheat = z.object({
  type: z.literal('image', { message: 'only "image" preheats are supported' }),
  url,
  headers,
  image: z.string().nullish(),
  tag: z.string().nullish(),
  digest: z.string().nullish()
})
export type LegacyCreatePreheat = z.infer<typeof legacyCreatePreheat>

// POST /registry/notifications (Kraken driver). Keys are matched case-insensitively, as Kraken's Go
// decoder does, after `lowerKeys`: Harbor's structs have no JSON tags and send `Events`, `Target`, ….
export const krakenNotification = z.object({
  events: z.array(z.object({
    id: z.string().nullish(),
    action: z.string(),
    target: z.object({
      mediatype: z.string().nullish(),
      digest: z.string().nullish(),
      repository: z.string().nullish(),
      url,
      tag: z.string().nullish()
    })
  })).max(100)
})
export type KrakenNotification = z.infer<typeof krakenNotification>

/** Lower-cases every object key, recursively (values untouched). */
export function lowerKeys (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(lowerKeys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), lowerKeys(v)]))
}
