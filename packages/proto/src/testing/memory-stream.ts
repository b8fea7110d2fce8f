import type { ByteStream } from '../piece-protocol/exchange.js'

export interface MemoryStreamOptions {
  /** Bytes queued unread before `send()` reports false (default 512 KiB). */
  highWater?: number
  /**
   * Deliver reads as batches the way libp2p v3 does: each iterator item is an array of every chunk
   * queued by the time the reader runs (after a macrotask), like the `Uint8ArrayList` libp2p emits
   * from its read buffer, instead of one chunk per item.
   */
  batch?: boolean
}

/** A side of the pair: a ByteStream plus a hook that simulates the connection vanishing under it. */
export interface MemoryStream extends ByteStream {
  /** Ends the peer's reads without a FIN, as libp2p does when the connection closes (GoAway, TCP end). */
  dropConnection: () => void
}

/**
 * An in-memory duplex pair with libp2p v3 stream semantics, for unit tests of the piece protocol:
 * `send()` reports false once `highWater` bytes are queued unread (then `drain` fires when the reader
 * catches up); `close()` ends the peer's reads and fires its `remoteCloseWrite`; `abort()` fails both
 * sides and fires `close` with the error.
 */
export function memoryStreamPair (options: number | MemoryStreamOptions = {}): [MemoryStream, MemoryStream] {
  const opts = typeof options === 'number' ? { highWater: options } : options
  const highWater = opts.highWater ?? 512 * 1024
  const a = new Side(highWater, opts.batch === true)
  const b = new Side(highWater, opts.batch === true)
  a.peer = b
  b.peer = a
  return [a, b]
}

class Side extends EventTarget implements MemoryStream {
  peer!: Side
  readonly #queue: Uint8Array[] = []
  #queued = 0
  #ended = false
  #error: Error | undefined
  #wake: (() => void) | undefined
  #drainWaiters: Array<() => void> = []

  constructor (private readonly highWater: number, private readonly batch: boolean) {
    super()
  }

  get writableNeedsDrain (): boolean {
    return this.peer.#queued >= this.highWater
  }

  send (data: Uint8Array): boolean {
    if (this.#error !== undefined) throw this.#error
    this.peer.#push(data.slice())
    return this.peer.#queued < this.highWater
  }

  async onDrain (): Promise<void> {
    if (this.peer.#queued < this.highWater) return
    await new Promise<void>(resolve => { this.peer.#drainWaiters.push(resolve) })
  }

  async close (): Promise<void> {
    this.peer.#end()
    this.peer.dispatchEvent(new Event('remoteCloseWrite'))
  }

  abort (err: Error): void {
    this.#fail(err)
    this.peer.#fail(err)
  }

  dropConnection (): void {
    this.peer.#end()
    this.peer.dispatchEvent(new Event('close'))
  }

  #push (data: Uint8Array): void {
    this.#queue.push(data)
    this.#queued += data.byteLength
    this.#wake?.()
  }

  #end (): void {
    this.#ended = true
    this.#wake?.()
  }

  #fail (err: Error): void {
    if (this.#error !== undefined) return
    this.#error = err
    this.#wake?.()
    this.#drained()
    this.dispatchEvent(Object.assign(new Event('close'), { error: err }))
  }

  #drained (): void {
    for (const w of this.#drainWaiters.splice(0)) w()
    // The writer is the peer: its `drain` listeners wait on this side's queue.
    this.peer.dispatchEvent(new Event('drain'))
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array | Uint8Array[]> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error
      if (this.#queue.length > 0) {
        if (this.batch) await new Promise(resolve => setTimeout(resolve, 0))
        if (this.#error !== undefined) throw this.#error
        const items = this.batch ? this.#queue.splice(0) : [this.#queue.shift() as Uint8Array]
        const wasFull = this.#queued >= this.highWater
        for (const item of items) this.#queued -= item.byteLength
        if (wasFull && this.#queued < this.highWater) this.#drained()
        yield this.batch ? items : items[0] as Uint8Array
        continue
      }
      if (this.#ended) return
      await new Promise<void>(resolve => { this.#wake = resolve })
      this.#wake = undefined
    }
  }
}
