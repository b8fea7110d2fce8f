import { z } from 'zod'
import { API_LIMITS, digestString } from './schemas.js'

/**
 * The preheat feed of the peer API: how dfclients learn that an `all_peers` preheat wants them to
 * fetch an image. A dfclient long-polls its own feed; each entry is one preheat job's blobs, which it
 * fetches through its ordinary P2P download path (so the seed's copy is the source, never the
 * upstream) and then reports per blob. An entry stays in the feed until its results are reported.
 */

/** Most blobs one feed entry lists (an image with more layers than this is not an image). */
export const MAX_FEED_BLOBS = 1_000

// GET /api/v1/peers/:peerId/preheats?since=&waitMs=&hostname= — long-poll this peer's preheat feed.
export const preheatFeedQuery = z.object({
  /** The `version` of the caller's last reply: with `waitMs`, the call waits until the feed changes. */
  since: z.coerce.number().int().nonnegative().optional(),
  waitMs: z.coerce.number().int().min(0).max(API_LIMITS.maxWaitMs).optional(),
  /** Shown in Harbor's per-host results; the peer's announce carries it too, but this call stands alone. */
  hostname: z.string().min(1).max(API_LIMITS.maxHostnameLength).optional()
}).strict()
export type PreheatFeedQuery = z.infer<typeof preheatFeedQuery>

export const preheatFeedBlob = z.object({
  digest: digestString,
  /** The upstream blob URL, for the task registration (the seed already holds the blob). */
  url: z.url({ protocol: /^https?$/ }).max(API_LIMITS.maxUrlLength),
  size: z.number().int().nonnegative()
})
export type PreheatFeedBlob = z.infer<typeof preheatFeedBlob>

export const preheatFeedEntry = z.object({
  /** The preheat job id, as a string; report results under it. */
  id: z.string().min(1).max(64),
  blobs: z.array(preheatFeedBlob).max(MAX_FEED_BLOBS)
})
export type PreheatFeedEntry = z.infer<typeof preheatFeedEntry>

export const preheatFeedResponse = z.object({
  /** Grows whenever the feed changes; pass it back as `since` to long-poll. */
  version: z.number().int().nonnegative(),
  preheats: z.array(preheatFeedEntry)
})
export type PreheatFeedResponse = z.infer<typeof preheatFeedResponse>

// POST /api/v1/peers/:peerId/preheats/:id/results — per-blob outcome of one feed entry → 204.
// Reporting an entry the supernode no longer lists (already reported, job over) is also 204.
export const preheatBlobResult = z.object({
  digest: digestString,
  ok: z.boolean(),
  /** For failures: the DF_ERR_* code. */
  code: z.string().min(1).max(API_LIMITS.maxErrorCodeLength).optional(),
  message: z.string().max(1024).optional()
}).strict()
export type PreheatBlobResult = z.infer<typeof preheatBlobResult>

export const preheatResultsRequest = z.object({
  results: z.array(preheatBlobResult).min(1).max(MAX_FEED_BLOBS)
}).strict()
export type PreheatResultsRequest = z.infer<typeof preheatResultsRequest>
