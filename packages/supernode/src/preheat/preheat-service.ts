import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { canonicalRegistryHost, dfError } from '@damselfly/proto'
import type { PlatformFilter } from './config.js'
import type { NewJob, PreheatDriver, PreheatJob, PreheatScope } from './job.js'
import { afterRestart, createJob, failJob, isTerminal, peerReported } from './job-state.js'
import { jobErrorOf, runJob, type JobRun } from './job-runner.js'
import { manifestUrlOf, parseManifestUrl } from './manifest.js'
import { PeerFeed } from './peer-feed.js'
import type { BlobSeeder, ManifestFetcher, PreheatJobStore } from './ports.js'
import { RegistryAuthorizer, type TokenFetcher } from './registry-auth.js'
import type { RegistryCredentials } from './registry-credentials.js'

export interface PreheatServiceInit {
  store: PreheatJobStore
  seeder: BlobSeeder
  fetchManifest: ManifestFetcher
  fetchToken: TokenFetcher
  /** The supernode's own registry credentials (read at start, so a function). */
  credentials: () => RegistryCredentials
  defaults: { platforms: PlatformFilter, concurrency: number, timeoutMs: number }
  logger: Logger
  now?: () => number
  /** Finished jobs are deleted this long after they finished; default 7 days. */
  retentionMs?: number
  /** Throws (DF_ERR_REGISTRY_NOT_ALLOWED) for a registry the supernode may not fetch from. */
  checkUrl?: (url: string) => void
}

/** A preheat request, after the provider API's own validation. */
export interface PreheatRequest {
  driver: PreheatDriver
  url: string
  /** Headers for the registry (Harbor sends its registry token here). Memory only. */
  headers?: Readonly<Record<string, string>> | undefined
  scope: PreheatScope
  platforms?: PlatformFilter | undefined
  concurrency?: number | undefined
  timeoutMs?: number | undefined
}

/** Progress of a job for the CLI's bar (not part of any Harbor reply Harbor reads). */
export interface JobProgress {
  blobs: { total: number, done: number }
  bytes: { total: number, done: number }
  peers: { total: number, done: number }
}

interface Active {
  abort: AbortController
  done: Promise<void>
  waiters: Set<() => void>
}

const DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000
/**
 * Request headers not sent on to the registry: `authorization` is the authorizer's to choose,
 * `accept` is set for manifests, and the rest describe a connection or body, not the request.
 */
const NOT_FORWARDED = new Set(['authorization', 'accept', 'host', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'transfer-encoding', 'content-length', 'content-type', 'proxy-authorization', 'proxy-connection'])
/** Thrown into a job's signal at shutdown: the job stays running in the store and resumes at the next start. */
const STOPPING = 'supernode stopping'

/**
 * Preheat jobs: created through any provider API, persisted at every state change, run in the
 * background, resumed (or failed with a reason) after a restart. Registry headers of a request live
 * only in the closure of its run.
 */
export class PreheatService {
  readonly feed: PeerFeed
  readonly #init: PreheatServiceInit
  readonly #now: () => number
  readonly #jobs = new Map<number, PreheatJob>()
  readonly #writes = new Map<number, Promise<unknown>>()
  readonly #active = new Map<number, Active>()
  #lastId = 0
  #stopping = false

  constructor (init: PreheatServiceInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
    this.feed = new PeerFeed({
      now: this.#now,
      onReport: (id, peerId, results) => {
        const jobId = Number(id)
        if (!this.#jobs.has(jobId)) return
        this.#update(jobId, j => peerReported(j, peerId, results, this.#now())).catch((err: unknown) => {
          this.#init.logger.error({ err, jobId, peerId }, 'could not record a peer preheat report')
        })
      }
    })
  }

  /** Loads the jobs (the store must be open), prunes old ones, and resumes or fails unfinished ones. */
  async start (): Promise<void> {
    const now = this.#now()
    const retention = this.#init.retentionMs ?? DEFAULT_RETENTION_MS
    for (const job of await this.#init.store.list()) {
      this.#lastId = Math.max(this.#lastId, job.id)
      if (isTerminal(job) && now - (job.finishedAt ?? job.updatedAt) > retention) {
        await this.#init.store.delete(job.id)
        continue
      }
      this.#jobs.set(job.id, job)
    }
    for (const job of [...this.#jobs.values()].filter(j => !isTerminal(j))) {
      const resumable = this.#resumable(job)
      const next = await this.#update(job.id, j => afterRestart(j, resumable, this.#now()))
      const log = this.#init.logger.child({ jobId: job.id })
      if (isTerminal(next)) {
        log.warn({ reason: next.error?.message }, 'preheat job left unfinished by a previous process cannot resume; failed')
      } else {
        log.info({ url: next.url }, 'resuming preheat job left unfinished by a previous process')
        this.#launch(next.id, {})
      }
    }
  }

  /** Ends every run without recording an outcome (the store keeps them running, to resume). */
  async stop (): Promise<void> {
    this.#stopping = true
    for (const a of this.#active.values()) a.abort.abort(new Error(STOPPING))
    this.feed.wakeAll()
    await Promise.allSettled([...this.#active.values()].map(async a => await a.done))
    await Promise.allSettled([...this.#writes.values()])
  }

  /** Validates, persists as PENDING and starts a job; resolves with it as stored. */
  async create (request: PreheatRequest): Promise<PreheatJob> {
    if (this.#stopping) throw dfError('DF_ERR_SHUTTING_DOWN', 'supernode is stopping')
    // Stored without query or fragment: nothing else is used, and a query could carry a secret.
    const loc = parseManifestUrl(request.url)
    this.#init.checkUrl?.(request.url)
    const headers = request.headers ?? {}
    const init: NewJob = {
      driver: request.driver,
      url: manifestUrlOf(loc, loc.reference),
      scope: request.scope,
      platforms: request.platforms ?? this.#init.defaults.platforms,
      concurrency: request.concurrency ?? this.#init.defaults.concurrency,
      timeoutMs: request.timeoutMs ?? this.#init.defaults.timeoutMs,
      requestCredentials: Object.keys(headers).length > 0
    }
    const job = createJob(++this.#lastId, `group_${randomUUID()}`, init, this.#now())
    await this.#init.store.put(job)
    this.#jobs.set(job.id, job)
    this.#init.logger.child({ jobId: job.id }).info({ driver: job.driver, url: job.url, scope: job.scope, platforms: job.platforms }, 'preheat job created')
    this.#launch(job.id, headers)
    return job
  }

  get (id: number): PreheatJob | undefined {
    return this.#jobs.get(id)
  }

  async progress (id: number): Promise<JobProgress | undefined> {
    const job = this.#jobs.get(id)
    if (job === undefined) return undefined
    const blobs = job.blobs ?? []
    let bytesDone = 0
    for (const b of blobs) {
      if (b.state === 'succeeded') bytesDone += b.size
      else if (b.state === 'running') bytesDone += Math.min(b.size, await this.#init.seeder.bytesHeld(b.digest))
    }
    const peers = job.peers ?? []
    return {
      blobs: { total: blobs.length, done: blobs.filter(b => b.state === 'succeeded').length },
      bytes: { total: blobs.reduce((n, b) => n + b.size, 0), done: bytesDone },
      peers: { total: peers.length, done: peers.filter(p => p.state !== 'pending').length }
    }
  }

  #resumable (job: PreheatJob): { ok: true } | { ok: false, reason: string } {
    let host: string
    try {
      host = canonicalRegistryHost(parseManifestUrl(job.url).host)
    } catch (err) {
      return { ok: false, reason: jobErrorOf(err).message }
    }
    if (!job.requestCredentials || this.#init.credentials().has(host)) return { ok: true }
    return { ok: false, reason: `the supernode restarted during the job; the registry headers that came with the request were kept in memory only and are gone, and no registryAuth is configured for ${host} to resume with` }
  }

  #launch (id: number, headers: Readonly<Record<string, string>>): void {
    const job = this.#jobs.get(id) as PreheatJob
    const log = this.#init.logger.child({ jobId: id })
    const loc = parseManifestUrl(job.url)
    const authorization = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1]
    const active: Active = { abort: new AbortController(), done: Promise.resolve(), waiters: new Set() }
    const run: JobRun = {
      seeder: this.#init.seeder,
      fetchManifest: this.#init.fetchManifest,
      feed: this.feed,
      auth: new RegistryAuthorizer({
        requestAuthorization: authorization,
        credential: this.#init.credentials().get(canonicalRegistryHost(loc.host)),
        repository: loc.repository,
        fetchToken: this.#init.fetchToken,
        now: this.#now,
        receivedAt: job.createdAt
      }),
      headers: Object.fromEntries(Object.entries(headers).filter(([k]) => !NOT_FORWARDED.has(k.toLowerCase()))),
      now: this.#now,
      logger: log,
      current: () => this.#jobs.get(id) as PreheatJob,
      update: async change => await this.#update(id, change),
      changed: async (ms, signal) => {
        await new Promise<void>(resolve => {
          const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); active.waiters.delete(done); resolve() }
          const timer = setTimeout(done, ms)
          signal.addEventListener('abort', done, { once: true })
          active.waiters.add(done)
        })
      }
    }
    // The timeout counts from the job's first start: time spent while the supernode was down counts too.
    const remaining = job.timeoutMs - (this.#now() - (job.startedAt ?? this.#now()))
    const timer = setTimeout(() => { active.abort.abort(dfError('DF_ERR_PREHEAT_TIMEOUT', `the job did not finish within ${Math.round(job.timeoutMs / 1000)} s`)) }, Math.max(0, remaining))
    this.#active.set(id, active)
    const ended = async (err: unknown): Promise<void> => {
      const reason: unknown = active.abort.signal.aborted ? active.abort.signal.reason : err
      if (reason instanceof Error && reason.message === STOPPING) return
      // Every path through runJob ends the job; the fallback only guards against one that forgot to.
      const error = reason === undefined ? { code: 'DF_ERR_INTERNAL', message: 'the job run ended without an outcome' } : jobErrorOf(reason)
      await this.#update(id, j => failJob(j, error, this.#now()))
    }
    active.done = runJob(run, active.abort.signal).then(async () => { await ended(undefined) }, ended).catch((err: unknown) => {
      log.error({ err }, 'could not record the preheat job failure')
    }).finally(() => {
      clearTimeout(timer)
      this.#active.delete(id)
      const end = this.#jobs.get(id)
      if (end !== undefined && isTerminal(end)) {
        log.info({ state: end.state, code: end.error?.code, err: end.error?.message, ms: (end.finishedAt ?? 0) - (end.startedAt ?? end.createdAt) }, 'preheat job finished')
      }
    })
  }

  /** Serialises each job's writes: store first, then memory, then wake its runner. */
  async #update (id: number, change: (job: PreheatJob) => PreheatJob): Promise<PreheatJob> {
    const previous = this.#writes.get(id) ?? Promise.resolve()
    const write = previous.catch(() => undefined).then(async () => {
      const current = this.#jobs.get(id)
      if (current === undefined) throw dfError('DF_ERR_PREHEAT_JOB_UNKNOWN', `no preheat job ${id}`)
      const next = change(current)
      if (next === current) return current
      await this.#init.store.put(next)
      this.#jobs.set(id, next)
      for (const w of [...(this.#active.get(id)?.waiters ?? [])]) w()
      return next
    })
    this.#writes.set(id, write)
    try {
      return await write
    } finally {
      if (this.#writes.get(id) === write) this.#writes.delete(id)
    }
  }
}
