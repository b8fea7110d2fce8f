import type { Digest } from './digest.js'

/**
 * Task identity. A task is one blob being distributed, identified by nothing but its content digest:
 * the same layer pulled from any repository, any registry or any mirror namespace is one task, fetched
 * from upstream at most once and shared by every peer. Safe because peers verify every byte against
 * the digest, so a blob from another source can never pass as this one.
 */
export type TaskId = string

export function taskIdFor (digest: Digest): TaskId {
  return digest.value
}
