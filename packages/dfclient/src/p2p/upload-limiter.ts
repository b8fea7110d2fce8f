import { setTimeout as sleep } from 'node:timers/promises'
import { ConcurrencyGate, parseSize } from '@damselfly/proto'

/**
 * Limits on what this node uploads to other peers (`--upload-concurrency`, `--upload-rate`): a
 * concurrency gate with a bounded FIFO queue, and a token bucket over all uploads. Pure apart from
 * the injected clock, so both are testable without real time.
 */

const BIT_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }

/**
 * Parses an upload rate into bytes per second: a size as proto `parseSize` reads it (`50MiB`,
 * `100MB`, `65536`) or network bits (`100Mbit`, `1Gbit`, decimal units), with an optional `/s`.
 * `unlimited` and `0` give `null` (no cap); anything else unparsable gives `undefined`.
 */
export function parseRate (text: string): number | null | undefined {
  const value = text.trim().replace(/\s*\/\s*s$/i, '')
  if (/^(unlimited|0)$/i.test(value)) return null
  const bits = /^(\d+(?:\.\d+)?)\s*([kmgt]?)bits?$/i.exec(value)
  if (bits !== null) {
    const bytes = Math.floor(Number(bits[1]) * (BIT_UNITS[(bits[2] as string).toLowerCase()] as number) / 8)
    return bytes >= 1 && Number.isSafeInteger(bytes) ? bytes : undefined
  }
  const size = parseSize(value)
  return size !== undefined && 'bytes' in size && size.bytes >= 1 ? size.bytes : undefined
}

/** Time as the limiter sees it; tests pass a fake one. */
export interface UploadClock {
  /** Milliseconds, monotonic. */
  now: () => number
  /** Resolves after `ms`, rejects with the signal's reason on abort. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>
}

export const systemClock: UploadClock = {
  now: () => performance.now(),
  sleep: async (ms, signal) => { await sleep(ms, undefined, { signal }) }
}

/** Bytes released per wait: small enough that concurrent uploads interleave (one yamux frame). */
export const RATE_SLICE_BYTES = 64 * 1024

export interface TokenBucketInit {
  bytesPerSecond: number
  /** Bytes that may go out at once after an idle period; default a quarter second's worth, at least one slice. */
  burstBytes?: number
  clock?: UploadClock
}

/**
 * A token bucket in bytes. `take(n)` reserves `n` bytes at once — the bucket may go into debt — and
 * waits until the debt is paid, so concurrent callers are served in the order they asked and the
 * total released by time `t` never exceeds `burstBytes + bytesPerSecond * t`.
 */
export class TokenBucket {
  readonly bytesPerSecond: number
  readonly burstBytes: number
  readonly #clock: UploadClock
  #tokens: number
  #last: number
  /** Bytes released to callers so far (aborted reservations are refunded, not counted). */
  granted = 0

  constructor (init: TokenBucketInit) {
    if (!(init.bytesPerSecond > 0) || !Number.isFinite(init.bytesPerSecond)) throw new RangeError(`bytesPerSecond must be a positive number, got ${init.bytesPerSecond}`)
    this.bytesPerSecond = init.bytesPerSecond
    this.burstBytes = init.burstBytes ?? Math.max(RATE_SLICE_BYTES, Math.floor(init.bytesPerSecond / 4))
    if (!(this.burstBytes > 0)) throw new RangeError(`burstBytes must be positive, got ${this.burstBytes}`)
    this.#clock = init.clock ?? systemClock
    this.#tokens = this.burstBytes
    this.#last = this.#clock.now()
  }

  /** Reserves `n` bytes and returns how long (ms) the caller must wait before sending them. */
  reserve (n: number): number {
    const now = this.#clock.now()
    this.#tokens = Math.min(this.burstBytes, this.#tokens + (now - this.#last) * this.bytesPerSecond / 1000)
    this.#last = now
    this.#tokens -= n
    return this.#tokens >= 0 ? 0 : -this.#tokens * 1000 / this.bytesPerSecond
  }

  /** Waits until `n` bytes may be sent. On abort the reservation is refunded and the signal's reason thrown. */
  async take (n: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    const wait = this.reserve(n)
    if (wait > 0) {
      try {
        await this.#clock.sleep(wait, signal)
      } catch (err) {
        this.#tokens += n
        throw err
      }
    }
    this.granted += n
  }
}

/**
 * Re-slices a piece body to at most RATE_SLICE_BYTES per item and takes each slice from `bucket`
 * before yielding it. The consumer (proto `servePiece`) waits for the stream to drain before asking
 * for the next slice, so backpressure still holds and the rate only ever slows it further.
 */
export async function * throttled (body: AsyncIterable<Uint8Array>, bucket: TokenBucket, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    for (let offset = 0; offset < chunk.byteLength; offset += RATE_SLICE_BYTES) {
      const slice = chunk.subarray(offset, offset + RATE_SLICE_BYTES)
      await bucket.take(slice.byteLength, signal)
      yield slice
    }
  }
}

export interface UploadGateInit {
  /** Pieces served at once. */
  concurrency: number
  /** Requests that may wait for a slot; beyond it a request is refused at once. */
  queueLimit?: number
  /** How long a request may wait for a slot before it is refused. */
  queueTimeoutMs?: number
}

/** Default waiting room: requesters refused here try another source. */
export const UPLOAD_QUEUE_LIMIT = 64
/** Well under the requester's 60 s per-piece deadline, so a refusal still leaves time elsewhere. */
export const UPLOAD_QUEUE_TIMEOUT_MS = 10_000

/**
 * At most `concurrency` uploads at once; further requests wait in FIFO order, up to `queueLimit` of
 * them and for at most `queueTimeoutMs`. `acquire` resolves to a release function, or `undefined`
 * when the request is refused (queue full, deadline passed, or the caller's signal aborted) — the
 * server then answers DF_ERR_PIECE_UNAVAILABLE.
 */
export class UploadGate extends ConcurrencyGate {
  constructor (init: UploadGateInit) {
    super({ concurrency: init.concurrency, queueLimit: init.queueLimit ?? UPLOAD_QUEUE_LIMIT, queueTimeoutMs: init.queueTimeoutMs ?? UPLOAD_QUEUE_TIMEOUT_MS })
  }

  async acquire (signal: AbortSignal): Promise<(() => void) | undefined> {
    const r = await this.enter(signal)
    return typeof r === 'function' ? r : undefined
  }
}
