import type { JobError, JobState, PreheatJob } from './job.js'
import type { SeedHost } from './ports.js'
import type { JobProgress } from './preheat-service.js'

/*
 * Jobs as Harbor's two Dragonfly drivers read them (PROTOCOLS.md §1.3, §1.4). Pure mappings, so the
 * exact shapes are unit-tested without HTTP. Request headers are never echoed: they carry Harbor's
 * registry token.
 */

/** Damselfly has no scheduler clusters; results name one implicit cluster with this id. */
export const CLUSTER_ID = 1

/** The only states Harbor's current driver accepts; anything else fails the Harbor task. */
export type DragonflyState = 'PENDING' | 'SUCCESS' | 'FAILURE'
/** The legacy (Dragonfly v1) statuses Harbor ≤ 2.11 maps: WAITING → PENDING, FAILED → FAIL. */
export type LegacyStatus = 'WAITING' | 'RUNNING' | 'SUCCESS' | 'FAILED'

export function dragonflyState (state: JobState): DragonflyState {
  return state === 'succeeded' ? 'SUCCESS' : state === 'failed' ? 'FAILURE' : 'PENDING'
}

export function legacyStatus (state: JobState): LegacyStatus {
  return state === 'pending' ? 'WAITING' : state === 'running' ? 'RUNNING' : state === 'succeeded' ? 'SUCCESS' : 'FAILED'
}

/** RFC 3339 (Go's time.Time decodes it); Harbor fails on an empty string, so absent times are omitted by callers. */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString()

const describe = (e: JobError): string => `${e.code}: ${e.message}`

interface SuccessTask { url: string, hostname: string, ip: string, peer_id?: string }
interface FailureTask extends SuccessTask { description: string }

/** Per-blob rows of Harbor's result table: the seed's, then each targeted peer's. */
export function resultTasks (job: PreheatJob, seed: SeedHost): { success: SuccessTask[], failure: FailureTask[] } {
  const success: SuccessTask[] = []
  const failure: FailureTask[] = []
  const ended = job.error === undefined ? 'the job ended' : `the job ended (${job.error.code})`
  for (const b of job.blobs ?? []) {
    const row = { url: b.url, hostname: seed.hostname, ip: seed.ip }
    if (b.state === 'succeeded') success.push(row)
    else if (b.state === 'failed' && b.error !== undefined) failure.push({ ...row, description: describe(b.error) })
    else if (job.state === 'failed') failure.push({ ...row, description: `not fetched: ${ended}` })
  }
  for (const p of job.peers ?? []) {
    const failed = new Map((p.failedBlobs ?? []).map(f => [f.digest, f.error]))
    for (const b of job.blobs ?? []) {
      const row = { url: b.url, hostname: p.hostname, ip: p.ip, peer_id: p.peerId }
      const blobError = failed.get(b.digest)
      if (p.state === 'succeeded' || (p.state === 'failed' && p.error === undefined && blobError === undefined)) success.push(row)
      else if (blobError !== undefined) failure.push({ ...row, description: describe(blobError) })
      else if (p.error !== undefined) failure.push({ ...row, description: describe(p.error) })
      else failure.push({ ...row, description: `did not report before ${ended}` })
    }
  }
  return { success, failure }
}

/**
 * The job as the Dragonfly manager's open API returns it (`POST /oapi/v1/jobs`, `GET
 * /oapi/v1/jobs/{id}`). Harbor reads `id` (an integer), `created_at`/`updated_at`, `state` and, once
 * finished, `result.job_states[].{error, results[].{success_tasks, failure_tasks}}`; the rest mirrors
 * the manager for other clients. `progress` is Damselfly's own, for `supernode preheat`.
 */
export function dragonflyJobReply (job: PreheatJob, seed: SeedHost, progress?: JobProgress): Record<string, unknown> {
  const state = dragonflyState(job.state)
  const finished = state !== 'PENDING'
  const tasks = resultTasks(job, seed)
  return {
    id: job.id,
    created_at: rfc3339(job.createdAt),
    updated_at: rfc3339(job.updatedAt),
    is_del: 0,
    task_id: job.groupId,
    bio: '',
    type: 'preheat',
    state,
    args: {
      type: 'image',
      url: job.url,
      scope: job.scope,
      platform: job.platforms === 'all' ? 'all' : job.platforms.join(','),
      concurrent_count: job.concurrency,
      // Go's time.Duration: nanoseconds.
      timeout: job.timeoutMs * 1_000_000
    },
    result: finished
      ? {
          group_uuid: job.groupId,
          state,
          created_at: rfc3339(job.createdAt),
          updated_at: rfc3339(job.updatedAt),
          job_states: [{
            task_uuid: `task_${job.groupId.replace(/^group_/, '')}`,
            task_name: 'preheat',
            state,
            error: job.error === undefined ? '' : describe(job.error),
            created_at: rfc3339(job.createdAt),
            ttl: 0,
            results: [{ scheduler_cluster_id: CLUSTER_ID, success_tasks: tasks.success, failure_tasks: tasks.failure }]
          }]
        }
      : null,
    user_id: 0,
    scheduler_clusters: [{ id: CLUSTER_ID, name: 'damselfly' }],
    ...(progress === undefined ? {} : { progress })
  }
}

/** `POST /preheats` reply (Harbor ≤ 2.11): the id must be a JSON string. */
export function legacyCreateReply (job: PreheatJob): { ID: string } {
  return { ID: String(job.id) }
}

/** `GET /preheats/{id}` reply, as the Dragonfly v1 supernode shaped it. */
export function legacyStatusReply (job: PreheatJob): { ID: string, status: LegacyStatus, startTime: string, finishTime: string, errorMsg: string } {
  return {
    ID: String(job.id),
    status: legacyStatus(job.state),
    startTime: job.startedAt === undefined ? '' : rfc3339(job.startedAt),
    finishTime: job.finishedAt === undefined ? '' : rfc3339(job.finishedAt),
    errorMsg: job.error === undefined ? '' : describe(job.error)
  }
}
