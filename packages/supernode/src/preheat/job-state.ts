import type { BlobRef, BlobState, JobError, JobPeer, NewJob, PeerBlobResult, PreheatJob } from './job.js'

/*
 * The preheat job state machine (diagram in job.ts) as pure functions: each takes a job and returns
 * the next one (or the same object when nothing changes), so the runner persists exactly what it
 * decided and tests can walk every path without I/O. Changes to a finished job are ignored: a fetch
 * or a peer report that lands after a timeout must not revive it.
 */

export function isTerminal (job: PreheatJob): boolean {
  return job.state === 'succeeded' || job.state === 'failed'
}

export function createJob (id: number, groupId: string, init: NewJob, now: number): PreheatJob {
  return { id, groupId, ...init, state: 'pending', createdAt: now, updatedAt: now, resumes: 0 }
}

export function startJob (job: PreheatJob, now: number): PreheatJob {
  if (job.state !== 'pending') return job
  return { ...job, state: 'running', startedAt: now, updatedAt: now }
}

/** Records the image's blobs (deduplicated by digest: platforms share layers). */
export function blobsResolved (job: PreheatJob, blobs: readonly BlobRef[], now: number): PreheatJob {
  if (job.state !== 'running') return job
  const unique = new Map<string, BlobRef>()
  for (const b of blobs) if (!unique.has(b.digest)) unique.set(b.digest, b)
  return { ...job, blobs: [...unique.values()].map(b => ({ ...b, state: 'pending' as const })), updatedAt: now }
}

function setBlob (job: PreheatJob, digest: string, state: BlobState, now: number, error?: JobError): PreheatJob {
  if (job.state !== 'running' || job.blobs === undefined) return job
  const i = job.blobs.findIndex(b => b.digest === digest)
  const blob = job.blobs[i]
  if (blob === undefined || blob.state === 'succeeded' || blob.state === 'failed') return job
  const blobs = [...job.blobs]
  const { error: _old, ...rest } = blob
  blobs[i] = error === undefined ? { ...rest, state } : { ...rest, state, error }
  return { ...job, blobs, updatedAt: now }
}

export const blobStarted = (job: PreheatJob, digest: string, now: number): PreheatJob => setBlob(job, digest, 'running', now)
export const blobSucceeded = (job: PreheatJob, digest: string, now: number): PreheatJob => setBlob(job, digest, 'succeeded', now)

/** A blob that cannot be seeded fails the whole job: the image is not preheated. */
export function blobFailed (job: PreheatJob, digest: string, error: JobError, now: number): PreheatJob {
  const next = setBlob(job, digest, 'failed', now, error)
  return next === job ? job : failJob(next, { code: error.code, message: `blob ${digest}: ${error.message}` }, now)
}

/** True once every blob is in the seed. */
export function seedComplete (job: PreheatJob): boolean {
  return job.blobs !== undefined && job.blobs.every(b => b.state === 'succeeded')
}

/** Starts the peer phase of an `all_peers` job with the dfclients following at this moment. */
export function peersTargeted (job: PreheatJob, peers: ReadonlyArray<Pick<JobPeer, 'peerId' | 'hostname' | 'ip'>>, now: number): PreheatJob {
  if (job.state !== 'running' || job.peers !== undefined) return job
  return { ...job, peers: peers.map(p => ({ peerId: p.peerId, hostname: p.hostname, ip: p.ip, state: 'pending' as const })), updatedAt: now }
}

function setPeer (job: PreheatJob, peerId: string, now: number, update: (p: JobPeer) => JobPeer): PreheatJob {
  if (job.state !== 'running' || job.peers === undefined) return job
  const i = job.peers.findIndex(p => p.peerId === peerId)
  const peer = job.peers[i]
  if (peer === undefined || peer.state !== 'pending') return job
  const peers = [...job.peers]
  peers[i] = update(peer)
  return { ...job, peers, updatedAt: now }
}

/** A peer's per-blob report; blobs it does not mention count as failed (it did not fetch them). */
export function peerReported (job: PreheatJob, peerId: string, results: readonly PeerBlobResult[], now: number): PreheatJob {
  const byDigest = new Map(results.map(r => [r.digest, r]))
  return setPeer(job, peerId, now, peer => {
    const failedBlobs = (job.blobs ?? []).flatMap(b => {
      const r = byDigest.get(b.digest)
      if (r?.ok === true) return []
      const error = r === undefined
        ? { code: 'DF_ERR_PREHEAT_PEER_FAILED', message: 'not reported by the peer' }
        : { code: r.code ?? 'DF_ERR_INTERNAL', message: r.message ?? 'failed' }
      return [{ digest: b.digest, error }]
    })
    return failedBlobs.length === 0 ? { ...peer, state: 'succeeded' } : { ...peer, state: 'failed', failedBlobs }
  })
}

/** A targeted peer that stopped following (or never came back after a restart). */
export function peerGone (job: PreheatJob, peerId: string, message: string, now: number): PreheatJob {
  return setPeer(job, peerId, now, peer => ({ ...peer, state: 'failed', error: { code: 'DF_ERR_PREHEAT_PEER_FAILED', message } }))
}

/**
 * Ends a running job whose work is all accounted for: succeeded when the seed has every blob and
 * every targeted peer fetched them; failed naming the peers that did not. Unchanged while work remains.
 */
export function settle (job: PreheatJob, now: number): PreheatJob {
  if (job.state !== 'running' || !seedComplete(job)) return job
  if (job.scope === 'all_peers') {
    if (job.peers === undefined || job.peers.some(p => p.state === 'pending')) return job
    const failed = job.peers.filter(p => p.state === 'failed')
    if (failed.length > 0) {
      const names = failed.slice(0, 5).map(p => `${p.hostname} (${p.ip}): ${p.error?.message ?? p.failedBlobs?.[0]?.error.message ?? 'failed'}`)
      const more = failed.length > 5 ? `; and ${failed.length - 5} more` : ''
      return failJob(job, { code: 'DF_ERR_PREHEAT_PEER_FAILED', message: `${failed.length} of ${job.peers.length} peers did not fetch the image: ${names.join('; ')}${more}` }, now)
    }
  }
  return { ...job, state: 'succeeded', finishedAt: now, updatedAt: now }
}

export function failJob (job: PreheatJob, error: JobError, now: number): PreheatJob {
  if (isTerminal(job)) return job
  return { ...job, state: 'failed', error, finishedAt: now, updatedAt: now }
}

/**
 * A job a previous process left unfinished. With `resumable`, it runs again: fetches in flight
 * back to pending (the seed discarded their partial data), finished blobs and peer reports kept.
 * Without, it fails with `reason` — never left pending for Harbor to poll until it gives up.
 */
export function afterRestart (job: PreheatJob, resumable: { ok: true } | { ok: false, reason: string }, now: number): PreheatJob {
  if (isTerminal(job)) return job
  if (!resumable.ok) return failJob(job, { code: 'DF_ERR_PREHEAT_INTERRUPTED', message: resumable.reason }, now)
  const blobs = job.blobs?.map(b => b.state === 'running' ? { ...b, state: 'pending' as const } : b)
  return { ...job, ...(blobs === undefined ? {} : { blobs }), resumes: job.resumes + 1, updatedAt: now }
}
