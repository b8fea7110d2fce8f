import type { Logger } from 'pino'
import type { SupernodeClient } from './client.js'

/**
 * Batches "I now hold piece N of task D" reports: pieces that complete within `delayMs` of each other
 * go in one POST. Failed reports are kept and retried with the next flush; a re-announce re-reports
 * everything from the cache anyway, so losing a batch on shutdown is harmless.
 */
export class PieceReporter {
  readonly #client: SupernodeClient
  readonly #peerId: string
  readonly #logger: Logger
  readonly #delayMs: number
  readonly #queue = new Map<string, Set<number>>()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  constructor (client: SupernodeClient, peerId: string, logger: Logger, delayMs = 100) {
    this.#client = client
    this.#peerId = peerId
    this.#logger = logger
    this.#delayMs = delayMs
  }

  report (digest: string, indexes: readonly number[], delayMs = this.#delayMs): void {
    let set = this.#queue.get(digest)
    if (set === undefined) { set = new Set(); this.#queue.set(digest, set) }
    for (const i of indexes) set.add(i)
    if (this.#stopped) return
    this.#timer ??= setTimeout(() => { this.#timer = undefined; void this.flush() }, delayMs)
  }

  async flush (): Promise<void> {
    if (this.#flushing !== undefined) { await this.#flushing; return }
    const batch = [...this.#queue.entries()]
    this.#queue.clear()
    this.#flushing = (async () => {
      for (const [digest, set] of batch) {
        const pieces = [...set].sort((a, b) => a - b)
        try {
          await this.#client.reportPieces(digest, this.#peerId, pieces)
        } catch (err) {
          this.#logger.debug({ taskId: digest, err: err instanceof Error ? err.message : String(err) }, 'piece report failed; will retry')
          this.report(digest, pieces, 5_000)
        }
      }
    })()
    try { await this.#flushing } finally { this.#flushing = undefined }
  }

  #stopped = false
  stop (): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
