import type { PlatformFilter } from './config.js'

/**
 * Where an image is preheated to. Damselfly has one supernode (the only seed peer), so
 * `single_seed_peer` and `all_seed_peers` both mean "the supernode caches it"; `all_peers` also
 * has every following dfclient fetch it from the seed.
 */
export type PreheatScope = 'single_seed_peer' | 'all_seed_peers' | 'all_peers'

/** The provider API a job came in through; only shapes the replies, never the work. */
export type PreheatDriver = 'dragonfly' | 'dragonfly-legacy' | 'kraken'

/**
 * ```
 *   pending ──start──▶ running ──every blob seeded (and, for all_peers, every peer reported ok)──▶ succeeded
 *      │                  │ ──a blob or a peer failed, timeout, manifest error──────────────────▶ failed
 *      └──────────────────┴──restart without its credentials─────────────────────────────────────▶ failed
 *   restart with credentials (or none needed): running again, unfinished blobs back to pending
 * ```
 * Terminal states never change: a late report or fetch outcome after them is ignored.
 */
export type JobState = 'pending' | 'running' | 'succeeded' | 'failed'

export interface JobError {
  /** A DF_ERR_* code. */
  code: string
  message: string
}

export type BlobState = 'pending' | 'running' | 'succeeded' | 'failed'

/** One blob (config or layer) of the image, fetched into the seed. */
export interface JobBlob {
  digest: string
  /** `<base>/v2/<name>/blobs/<digest>`: where the seed fetches it, and the row key in Harbor's results. */
  url: string
  size: number
  state: BlobState
  error?: JobError
}

/** A dfclient asked to fetch the image (`all_peers`). */
export interface JobPeer {
  peerId: string
  hostname: string
  ip: string
  state: 'pending' | 'succeeded' | 'failed'
  /** Per-blob failures it reported; a peer failure without them (it went away) is in `error`. */
  failedBlobs?: Array<{ digest: string, error: JobError }>
  error?: JobError
}

/** A preheat job as persisted. Registry credentials are deliberately not part of it. */
export interface PreheatJob {
  id: number
  /** Dragonfly's `task_id` (`group_<uuid>`), stable for the job's life. */
  groupId: string
  driver: PreheatDriver
  /** The manifest URL as requested (a tag or digest reference). */
  url: string
  scope: PreheatScope
  platforms: PlatformFilter
  concurrency: number
  timeoutMs: number
  /**
   * Whether the request brought its own registry headers. They lived in memory only, so a job that
   * had them cannot be resumed by a new process unless the supernode has credentials of its own.
   */
  requestCredentials: boolean
  state: JobState
  createdAt: number
  updatedAt: number
  startedAt?: number
  finishedAt?: number
  error?: JobError
  /** Undefined until the manifest is resolved. */
  blobs?: JobBlob[]
  /** Undefined until the peer phase of an `all_peers` job starts. */
  peers?: JobPeer[]
  /** How many times a new process picked the job up after a restart. */
  resumes: number
}

/** What a caller provides to create a job. */
export interface NewJob {
  driver: PreheatDriver
  url: string
  scope: PreheatScope
  platforms: PlatformFilter
  concurrency: number
  timeoutMs: number
  requestCredentials: boolean
}

/** A blob's descriptor before it is tracked. */
export interface BlobRef {
  digest: string
  url: string
  size: number
}

/** A blob outcome a dfclient reported. */
export interface PeerBlobResult {
  digest: string
  ok: boolean
  code?: string | undefined
  message?: string | undefined
}
