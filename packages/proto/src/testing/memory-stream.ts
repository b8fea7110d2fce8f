import type { ByteStream } from '../piece-protocol/exchange.js'

/**
 * An in-memory duplex pair with libp2p v3 stream semantics, for unit tests of the piece protocol:
 * `send()` reports false once `highWater` bytes are queued unread; `close()` ends the peer's reads;
 * `abort()` fails both sides.
 */
export function memoryStreamPair (highWater = 512 * 1024): [ByteStream, ByteStream] {
  const a = new Side(highWater)
  const b = new Side(highWater)
  a.peer = b
  b.peer = a
  return [a, b]
}

class Side implements ByteStream {
  peer!: Side
  readonly #queue: Uint8Array[] = []
  #queued = 0
  #ended = false
  #error: Error | undefined
  #wake: (() => void) | undefined
  #drainWaiters: Array<() => void> = []

  constructor (private readonly highWater: number) {}

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
  }

  abort (err: Error): void {
    this.#fail(err)
    this.peer.#fail(err)
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
    if (this.#error === undefined) this.#error = err
    this.#wake?.()
    for (const w of this.#drainWaiters.splice(0)) w()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error
      const next = this.#queue.shift()
      if (next !== undefined) {
        this.#queued -= next.byteLength
        if (this.#queued < this.highWater) for (const w of this.#drainWaiters.splice(0)) w()
        yield next
        continue
      }
      if (this.#ended) return
      await new Promise<void>(resolve => { this.#wake = resolve })
      this.#wake = undefined
    }
  }
}
