import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { dfError, isDfError, tryParseDigest, type DfError } from '@damselfly/proto'
import type { BlobRef, JobError, PreheatJob } from './job.js'
import { blobFailed, blobStarted, blobSucceeded, blobsResolved, isTerminal, peerGone, peersTargeted, settle, startJob } from './job-state.js'
import { blobUrlOf, manifestUrlOf, parseManifest, parseManifestUrl, selectEntries, type ManifestLocation } from './manifest.js'
import { FOLLOWER_TTL_MS, type PeerFeed } from './peer-feed.js'
import type { BlobSeeder, ManifestFetcher, ManifestResponse } from './ports.js'
import type { RegistryAuthorizer } from './registry-auth.js'

/** What one job run needs; the service builds it per job. */
export interface JobRun {
  seeder: BlobSeeder
  fetchManifest: ManifestFetcher
  feed: PeerFeed
  auth: RegistryAuthorizer
  /** Request headers other than `Authorization` (which `auth` owns), sent with manifest GETs. */
  headers: Readonly<Record<string, string>>
  now: () => number
  logger: Logger
  /** The job as it is now. */
  current: () => PreheatJob
  /** Applies a state change, persists it, and resolves with the job once durable. */
  update: (change: (job: PreheatJob) => PreheatJob) => Promise<PreheatJob>
  /** Resolves when the job changes (e.g. a peer reported), after `ms`, or on abort. */
  changed: (ms: number, signal: AbortSignal) => Promise<void>
}

/** Nested indexes deeper than this are refused (an index of indexes is already unusual). */
const MAX_INDEX_DEPTH = 2
/** Registries answer manifests in kilobytes; a bigger body is not a manifest worth parsing. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** Pause before retrying a blob the seed refused for being at its limit of concurrent fetches. */
const BUSY_RETRY_MS = 1_000
/** How often the peer phase checks that the peers it waits for are still following. */
const PEER_CHECK_MS = 5_000
/** Most `Authorization` attempts per request: the one we have, then what the challenge leads to. */
const AUTH_ATTEMPTS = 3

/** The job's error as recorded: the code and message of a DfError, else an internal error. */
export function jobErrorOf (err: unknown): JobError {
  if (isDfError(err)) return { code: err.code, message: err.message }
  return { code: 'DF_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}

/**
 * Runs one job to its end or until `signal` aborts: resolve the image (manifest, index → platform
 * manifests), seed every blob through the seed's single-flight fetch with bounded concurrency, and
 * for `all_peers` wait for the following dfclients' reports. Throws on failures that end the job
 * (the caller records them); blob and peer failures are recorded here as they happen.
 */
export async function runJob (run: JobRun, signal: AbortSignal): Promise<void> {
  let job = await run.update(j => startJob(j, run.now()))
  if (isTerminal(job)) return
  if (job.blobs === undefined) {
    const blobs = await resolveImage(run, parseManifestUrl(job.url), signal)
    job = await run.update(j => blobsResolved(j, blobs, run.now()))
    run.logger.info({ blobs: blobs.length, bytes: blobs.reduce((n, b) => n + b.size, 0) }, 'preheat image resolved')
  }
  await seedBlobs(run, signal)
  if (isTerminal(run.current())) return
  if (run.current().scope === 'all_peers') await peerPhase(run, signal)
  await run.update(j => settle(j, run.now()))
}

async function resolveImage (run: JobRun, loc: ManifestLocation, signal: AbortSignal): Promise<BlobRef[]> {
  const visit = async (reference: string, depth: number): Promise<BlobRef[]> => {
    const res = await withAuth(run, signal, async authorization => await run.fetchManifest(manifestUrlOf(loc, reference), { ...run.headers, ...(authorization === undefined ? {} : { authorization }) }, signal))
    checkManifestBytes(res, reference)
    const parsed = parseManifest(res.body, res.contentType)
    if (parsed.kind === 'image') return parsed.blobs.map(b => ({ digest: b.digest, size: b.size, url: blobUrlOf(loc, b.digest) }))
    if (depth + 1 >= MAX_INDEX_DEPTH) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `index ${reference} nests indexes more than ${MAX_INDEX_DEPTH} deep`)
    const out: BlobRef[] = []
    for (const entry of selectEntries(parsed.entries, run.current().platforms)) out.push(...await visit(entry.digest, depth + 1))
    return out
  }
  return await visit(loc.reference, 0)
}

/** A manifest fetched by digest must hash to it: the registry (or something between) could lie. */
function checkManifestBytes (res: ManifestResponse, reference: string): void {
  if (res.body.byteLength > MAX_MANIFEST_BYTES) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `manifest ${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`)
  const digest = tryParseDigest(reference)
  if (digest === undefined) return
  const actual = `${digest.algorithm}:${createHash(digest.algorithm).update(res.body).digest('hex')}`
  if (actual !== digest.value) throw dfError('DF_ERR_PREHEAT_MANIFEST_INVALID', `manifest ${reference} hashes to ${actual}`)
}

/** Calls `attempt` with the current Authorization, following a 401's challenge a bounded number of times. */
async function withAuth<T> (run: JobRun, signal: AbortSignal, attempt: (authorization: string | undefined) => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt(await run.auth.current(signal))
    } catch (err) {
      if (i >= AUTH_ATTEMPTS || !isUnauthorized(err)) throw err
      const www = err.details?.wwwAuthenticate
      if (!await run.auth.challenged(typeof www === 'string' ? www : undefined, signal)) throw err
    }
  }
}

function isUnauthorized (err: unknown): err is DfError {
  return isDfError(err) && err.code === 'DF_ERR_UPSTREAM_REJECTED' && err.details?.status === 401
}

/**
 * Seeds every blob not yet seeded, at most `concurrency` at a time. A request token that cannot be
 * renewed makes the limit lapse as its expiry nears: every remaining fetch then starts at once, since
 * a fetch needs the token only until the registry answers (the body streams after that).
 */
async function seedBlobs (run: JobRun, signal: AbortSignal): Promise<void> {
  const job = run.current()
  const todo = (job.blobs ?? []).filter(b => b.state !== 'succeeded')
  if (todo.length === 0) return
  const deadline = run.auth.deadline()
  // Rush when 10 minutes remain, or half the token's life for short-lived tokens.
  const rushAt = deadline === undefined ? Infinity : deadline - Math.min(10 * 60_000, Math.max(0, (deadline - (job.startedAt ?? job.createdAt)) / 2))
  const stopLaunching = new AbortController()
  const local = AbortSignal.any([signal, stopLaunching.signal])
  const finished = new AbortController()
  // One timer for the whole loop, ended with it.
  const rush = rushAt === Infinity ? new Promise<void>(() => {}) : sleep(rushAt - run.now(), AbortSignal.any([local, finished.signal]))
  const running = new Set<Promise<void>>()
  let rushed = false
  try {
    for (const blob of todo) {
      while (running.size >= job.concurrency && run.now() < rushAt && !local.aborted) await Promise.race([...running, rush])
      if (local.aborted) break
      if (!rushed && running.size >= job.concurrency) {
        rushed = true
        run.logger.info({ deadline: new Date(deadline ?? 0).toISOString() }, 'registry token expires soon: starting every remaining blob fetch now')
      }
      const p: Promise<void> = seedOne(run, blob, local).then(ok => { if (!ok) stopLaunching.abort() }).finally(() => { running.delete(p) })
      running.add(p)
    }
    await Promise.all(running)
  } finally {
    finished.abort()
  }
  signal.throwIfAborted()
}

/** Seeds one blob; records the outcome. Resolves false when it failed (the job failed with it). */
async function seedOne (run: JobRun, blob: BlobRef, signal: AbortSignal): Promise<boolean> {
  try {
    await run.update(j => blobStarted(j, blob.digest, run.now()))
    await withAuth(run, signal, async authorization => {
      for (;;) {
        try {
          await run.seeder.register({ digest: blob.digest, url: blob.url, authorization }, signal)
          return
        } catch (err) {
          // The seed is at its limit of concurrent back-to-source fetches (pulls count too): wait a turn.
          if (!isDfError(err) || err.code !== 'DF_ERR_TOO_MANY_TASKS') throw err
          await sleep(BUSY_RETRY_MS, signal)
          signal.throwIfAborted()
        }
      }
    })
    await run.seeder.settled(blob.digest, signal)
    await run.update(j => blobSucceeded(j, blob.digest, run.now()))
    run.logger.debug({ digest: blob.digest, size: blob.size }, 'preheat blob seeded')
    return true
  } catch (err) {
    // Aborted: the job is ending for another reason (timeout, another blob failed, shutdown).
    if (signal.aborted) return true
    const error = jobErrorOf(err)
    run.logger.warn({ digest: blob.digest, code: error.code, err: error.message }, 'preheat blob failed')
    await run.update(j => blobFailed(j, blob.digest, error, run.now()))
    return false
  }
}

/**
 * `all_peers`: asks every following dfclient to fetch the blobs from the seed and waits for their
 * reports. Targets are fixed when the phase first starts (persisted), so a resumed job waits for the
 * same peers; one that does not follow again within the follower TTL counts as failed.
 */
async function peerPhase (run: JobRun, signal: AbortSignal): Promise<void> {
  let job = run.current()
  if (job.peers === undefined) {
    job = await run.update(j => peersTargeted(j, run.feed.liveFollowers(), run.now()))
    run.logger.info({ peers: job.peers?.length ?? 0 }, 'preheat asking following peers to fetch the image')
  }
  const id = String(job.id)
  const pending = (): string[] => (run.current().peers ?? []).filter(p => p.state === 'pending').map(p => p.peerId)
  if (pending().length === 0) return
  const blobs = (job.blobs ?? []).map(b => ({ digest: b.digest, url: b.url, size: b.size }))
  run.feed.assign(id, pending(), blobs)
  const graceUntil = run.now() + FOLLOWER_TTL_MS
  try {
    while (pending().length > 0 && !isTerminal(run.current())) {
      await run.changed(PEER_CHECK_MS, signal)
      signal.throwIfAborted()
      if (run.now() < graceUntil) continue
      for (const peerId of pending()) {
        if (!run.feed.isLive(peerId)) await run.update(j => peerGone(j, peerId, 'stopped polling the supernode before reporting (gone, or restarted)', run.now()))
      }
    }
  } finally {
    run.feed.withdraw(id)
  }
}

/** Resolves after `ms` (or at once when aborted); never rejects. */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    // Timers cap at ~24.8 days; an Infinity rush time just means "wait for a slot".
    const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1))
    signal.addEventListener('abort', done, { once: true })
  })
}
