export interface ConcurrencyGateInit {
  concurrency: number
  /** Callers that may wait for a slot; more are refused at once. */
  queueLimit: number
  /** How long a caller may wait for a slot before it is refused. */
  queueTimeoutMs: number
}

/** Why `acquire` refused: the waiting room was full, or the wait (or the caller's signal) ran out. */
export type GateRefusal = 'queue_full' | 'wait_timeout'

/** What `holdWhileOpen` needs of a response: its `close` event. */
export interface ClosingResponse {
  once: (event: 'close', listener: () => void) => unknown
  off: (event: 'close', listener: () => void) => unknown
}

interface Waiter {
  grant: (release: () => void) => void
}

/**
 * At most `concurrency` holders at once; further callers wait in FIFO order, up to `queueLimit` of
 * them and for at most `queueTimeoutMs`. `acquire` resolves to a release function (idempotent; it
 * hands the slot straight to the oldest waiter), or to the reason it refused. Used by both HTTP
 * servers (requests) and the dfclient piece server (uploads); no timers run while nobody waits.
 */
export class ConcurrencyGate {
  readonly concurrency: number
  readonly queueLimit: number
  readonly queueTimeoutMs: number
  #active = 0
  readonly #queue: Waiter[] = []
  /** Callers refused so far. */
  refused = 0

  constructor (init: ConcurrencyGateInit) {
    if (!Number.isSafeInteger(init.concurrency) || init.concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${init.concurrency}`)
    this.concurrency = init.concurrency
    this.queueLimit = init.queueLimit
    this.queueTimeoutMs = init.queueTimeoutMs
  }

  get active (): number { return this.#active }
  get queued (): number { return this.#queue.length }

  async enter (signal: AbortSignal): Promise<(() => void) | GateRefusal> {
    if (signal.aborted) { this.refused++; return 'wait_timeout' }
    if (this.#active < this.concurrency) {
      this.#active++
      return this.#releaser()
    }
    if (this.#queue.length >= this.queueLimit) { this.refused++; return 'queue_full' }
    return await new Promise(resolve => {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.queueTimeoutMs)])
      const onAbort = (): void => {
        const i = this.#queue.indexOf(waiter)
        if (i >= 0) this.#queue.splice(i, 1)
        this.refused++
        resolve('wait_timeout')
      }
      const waiter: Waiter = {
        grant: release => {
          deadline.removeEventListener('abort', onAbort)
          resolve(release)
        }
      }
      this.#queue.push(waiter)
      deadline.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Admits one HTTP response: waits for a slot while the response is open, holds the slot until it
   * closes, then calls `admitted`; calls `refused` with the reason when the gate refuses it (not when
   * the client went away while waiting: nobody is left to answer). Takes any emitter of `close`, so
   * both servers' request gates share it without this package knowing their frameworks.
   */
  holdWhileOpen (res: ClosingResponse, admitted: () => void, refused: (reason: GateRefusal) => void, failed: (err: unknown) => void): void {
    const gone = new AbortController()
    const onClose = (): void => { gone.abort() }
    res.once('close', onClose)
    this.enter(gone.signal).then(entered => {
      if (typeof entered !== 'function') {
        if (!gone.signal.aborted) refused(entered)
        return
      }
      res.off('close', onClose)
      if (gone.signal.aborted) { entered(); return }
      res.once('close', entered)
      admitted()
    }, failed)
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#queue.shift()
      if (next === undefined) this.#active--
      else next.grant(this.#releaser())
    }
  }
}
