import { API_PREFIX } from './schemas.js'

/** Paths of the peer API, built in one place so server and client cannot drift. */
export const apiPaths = {
  peers: `${API_PREFIX}/peers`,
  peer: (peerId: string) => `${API_PREFIX}/peers/${encodeURIComponent(peerId)}`,
  heartbeat: (peerId: string) => `${API_PREFIX}/peers/${encodeURIComponent(peerId)}/heartbeat`,
  tasks: `${API_PREFIX}/tasks`,
  pieces: (digest: string) => `${API_PREFIX}/tasks/${encodeURIComponent(digest)}/pieces`,
  pieceResults: (digest: string) => `${API_PREFIX}/tasks/${encodeURIComponent(digest)}/piece-results`,
  preheatFeed: (peerId: string) => `${API_PREFIX}/peers/${encodeURIComponent(peerId)}/preheats`,
  preheatResults: (peerId: string, id: string) => `${API_PREFIX}/peers/${encodeURIComponent(peerId)}/preheats/${encodeURIComponent(id)}/results`
} as const
