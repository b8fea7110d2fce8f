import type { PiecesResponse } from '@damselfly/proto'
import type { TaskDirectory } from './ports.js'

/** Pause after an early long-poll reply with no news: at most 5 polls a second per download. */
const EARLY_REPLY_PAUSE_MS = 200

export interface AvailabilityPollInit {
  tasks: TaskDirectory
  digest: string
  pollWaitMs: number
  /** Consecutive failed polls tolerated before `onGiveUp`. */
  maxPollFailures: number
  signal: AbortSignal
  /** The piece the reader needs next, sent with each poll. */
  from: () => number
  /** The read-ahead window: only pieces in [from, from + window) are asked about. */
  window: number
  /** Whether to keep polling (pieces still missing, no failure). */
  wanted: () => boolean
  /** Each reply; return false to stop (the task failed). */
  onReply: (res: PiecesResponse) => boolean
  onGiveUp: (err: Error) => void
}

/**
 * Long-polls a task's piece availability while the download wants it: the first poll answers at
 * once, later ones wait for news newer than the last version seen.
 */
export async function pollAvailability (o: AvailabilityPollInit): Promise<void> {
  const { signal, pollWaitMs } = o
  let version = 0
  let failures = 0
  while (!signal.aborted && o.wanted()) {
    const since = version
    const waitMs = since === 0 ? 0 : pollWaitMs
    const asked = Date.now()
    try {
      const res = await o.tasks.pollPieces(o.digest, since, waitMs, signal, { from: o.from(), window: o.window })
      failures = 0
      version = res.version
      if (!o.onReply(res)) return
      // An answer without news that came back early must not turn this loop into a busy one. The
      // pause stays short because the supernode also ends a poll early on purpose, when a piece's
      // wait for a peer source runs out and the seed becomes eligible (scheduler SOURCE_WAIT_LIMIT_MS).
      if (since !== 0 && res.version === since && Date.now() - asked < waitMs / 2) await sleep(Math.min(EARLY_REPLY_PAUSE_MS, waitMs), signal)
    } catch (err) {
      if (signal.aborted) return
      failures++
      if (failures >= o.maxPollFailures) {
        o.onGiveUp(err instanceof Error ? err : new Error(String(err)))
        return
      }
      await sleep(250 * failures, signal)
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const onAbort = (): void => { clearTimeout(t); resolve() }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
