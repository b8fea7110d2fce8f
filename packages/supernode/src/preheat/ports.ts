import type { PreheatJob } from './job.js'

/*
 * The ports of the preheat domain. The domain (job-runner.ts, preheat-service.ts, peer-feed.ts)
 * depends only on these; the adapters are LevelDB (level-job-store.ts), undici
 * (registry-http.ts) and the seed's back-to-source fetch (seed-adapter.ts).
 */

/**
 * Durable preheat jobs. Absence is `undefined`; methods throw only on real failures. Records never
 * hold registry credentials.
 */
export interface PreheatJobStore {
  open: () => Promise<void>
  close: () => Promise<void>
  put: (job: PreheatJob) => Promise<void>
  get: (id: number) => Promise<PreheatJob | undefined>
  delete: (id: number) => Promise<void>
  /** Every job, by ascending id. */
  list: () => Promise<PreheatJob[]>
}

export interface ManifestResponse {
  body: Uint8Array
  contentType: string | undefined
}

/**
 * GETs a manifest with exactly `headers` (plus an Accept for every manifest type). Throws
 * DF_ERR_UPSTREAM_REJECTED with `details.status` (and `details.wwwAuthenticate` on a 401) and the
 * registry's own error text in the message; DF_ERR_UPSTREAM_UNREACHABLE / _TIMEOUT on the network.
 */
export type ManifestFetcher = (url: string, headers: Readonly<Record<string, string>>, signal: AbortSignal) => Promise<ManifestResponse>

/** The seed's cache, as a preheat needs it: the same single-flight back-to-source path pulls use. */
export interface BlobSeeder {
  /**
   * Starts the back-to-source fetch of a blob, or joins the one running (a pull or another job),
   * or finds it already verified on disk. Resolves once the upstream accepted the request (from then
   * on the credential is no longer needed); throws the upstream's refusal as a DfError.
   */
  register: (request: { digest: string, url: string, authorization?: string | undefined }, signal: AbortSignal) => Promise<void>
  /** Resolves once the blob is verified on disk; throws DF_ERR_TASK_FAILED when its fetch failed. */
  settled: (digest: string, signal: AbortSignal) => Promise<void>
  /** Bytes of the blob the seed holds (hashed pieces), for progress. */
  bytesHeld: (digest: string) => Promise<number>
}

/** How the seed appears in per-host results. */
export interface SeedHost {
  hostname: string
  ip: string
}
