import { formatBytes } from '@damselfly/proto'

/** The `progress` block of a job reply (Damselfly's extension of the Dragonfly shape). */
export interface Progress {
  blobs: { total: number, done: number }
  bytes: { total: number, done: number }
  peers: { total: number, done: number }
}

const BAR_WIDTH = 30

/** `[██████░░░░] 45%  3/5 blobs  12.0 MiB/27.0 MiB  peers 1/2` (peers only once targeted). */
export function progressBar (p: Progress): string {
  const fraction = p.bytes.total === 0 ? (p.blobs.total === 0 ? 0 : p.blobs.done / p.blobs.total) : p.bytes.done / p.bytes.total
  const filled = Math.round(Math.min(1, fraction) * BAR_WIDTH)
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${summary(p)}`
}

/** `3/5 blobs, 12.0 MiB of 27.0 MiB, peers 1/2`: the plain-line form for logs and pipes. */
export function summary (p: Progress): string {
  const peers = p.peers.total > 0 ? `  peers ${p.peers.done}/${p.peers.total}` : ''
  return `${p.blobs.done}/${p.blobs.total} blobs  ${formatBytes(p.bytes.done)}/${formatBytes(p.bytes.total)}${peers}`
}
