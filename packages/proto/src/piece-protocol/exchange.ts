import { Digester } from '../digest.js'
import { dfError, isDfError } from '../errors.js'
import { encodeFrame, FrameDecoder } from './frame.js'
import { pieceRequest, pieceResponseHeader, type PieceRequest } from './messages.js'

/**
 * Both ends of the piece protocol over any duplex byte stream with libp2p v3 `Stream` semantics
 * (`send()` returns false → wait for `onDrain()`; async iteration reads; `close()` half-closes;
 * `abort()` resets). Kept free of libp2p imports so it is testable over an in-memory pair and shared
 * by the supernode and the dfclient.
 */
export interface ByteStream extends AsyncIterable<Uint8Array | Iterable<Uint8Array>> {
  send: (data: Uint8Array) => boolean
  onDrain: (options?: { signal?: AbortSignal }) => Promise<void>
  close: (options?: { signal?: AbortSignal }) => Promise<void>
  abort: (err: Error) => void
  /**
   * libp2p v3 streams have these; when present they are used to wait for drains reliably and to tell a
   * peer's end-of-piece (`remoteCloseWrite`, a FIN) from a connection that went away under the stream
   * (`close` without a FIN, which libp2p's async iterator reports as a clean end).
   */
  readonly writableNeedsDrain?: boolean
  addEventListener?: (type: StreamEventName, listener: (evt: Event) => void, options?: { once?: boolean }) => void
  removeEventListener?: (type: StreamEventName, listener: (evt: Event) => void) => void
}

export type StreamEventName = 'drain' | 'close' | 'remoteCloseWrite'

export interface FetchPieceOptions {
  signal: AbortSignal
  onBytes?: (n: number) => void
  /** Receive into this buffer (at least the piece's size) instead of a new one; the result views it. */
  into?: Uint8Array
}

/** A readable piece, as handed to the server side by the local store. */
export interface OpenedPiece {
  size: number
  body: AsyncIterable<Uint8Array>
}

/**
 * Looks up a piece; `undefined` when this node does not hold it. Throwing a DfError refuses the
 * request with that code (e.g. DF_ERR_PEER_NOT_ALLOWED for a dialer the supernode never registered).
 */
export type PieceOpener = (request: PieceRequest, signal: AbortSignal) => Promise<OpenedPiece | undefined>

/** Largest slice written per `send()`: yamux frames are 64 KiB, so larger writes only buffer. */
const SEND_SLICE = 256 * 1024

const single: Uint8Array[] = []

/** The chunks of one iterator item (a Uint8Array, or libp2p's Uint8ArrayList) without copying. */
function toChunks (chunk: Uint8Array | Iterable<Uint8Array>): Iterable<Uint8Array> {
  if (!(chunk instanceof Uint8Array)) return chunk
  single[0] = chunk
  return single
}

function abortOn (stream: ByteStream, signal: AbortSignal): () => void {
  const onAbort = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
  if (signal.aborted) onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  return () => { signal.removeEventListener('abort', onAbort) }
}

/** Streams whose last `send()` returned false: the next send waits for a drain first. */
const mustDrain = new WeakSet<ByteStream>()

/**
 * Writes `data` in slices, honouring backpressure before each slice rather than after the last one,
 * so a caller learns the bytes were handed over as soon as they were (`close()` flushes the rest).
 */
async function sendAll (stream: ByteStream, data: Uint8Array, signal: AbortSignal): Promise<void> {
  for (let offset = 0; offset < data.byteLength; offset += SEND_SLICE) {
    if (mustDrain.has(stream) || stream.writableNeedsDrain === true) await drained(stream, signal)
    if (stream.send(data.subarray(offset, offset + SEND_SLICE))) mustDrain.delete(stream)
    else mustDrain.add(stream)
  }
}

/**
 * Waits until `send()` may be called again. libp2p 3.3's `onDrain()` is one-shot per stream: it keeps
 * the first drain's resolved promise, so every later call returns at once while the stream still
 * needs a drain, and a writer relying on it buffers the whole piece in the stream's write buffer.
 * With the event API available, wait for real `drain` events while `writableNeedsDrain` holds.
 */
async function drained (stream: ByteStream, signal: AbortSignal): Promise<void> {
  const { addEventListener: on, removeEventListener: off } = stream
  if (on === undefined || off === undefined || stream.writableNeedsDrain === undefined) {
    await stream.onDrain({ signal })
    return
  }
  while (stream.writableNeedsDrain) {
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown): void => {
        off.call(stream, 'drain', onDrain)
        off.call(stream, 'close', onClose)
        signal.removeEventListener('abort', onAbort)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onDrain = (): void => { done() }
      const onClose = (evt: Event): void => { done((evt as Event & { error?: Error }).error ?? dfError('DF_ERR_PROTOCOL', 'stream closed while waiting to send')) }
      const onAbort = (): void => { done(signal.reason) }
      on.call(stream, 'drain', onDrain)
      on.call(stream, 'close', onClose)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}

/**
 * Reads one frame; returns it with every byte that followed it on the same iterator. One iterator item
 * may hold several chunks (libp2p delivers a `Uint8ArrayList` of whatever its read buffer held, e.g. a
 * yamux frame carrying the response header and a megabyte of piece data): the chunks after the one
 * that completed the frame are piece bytes and must be kept.
 */
async function readFrame (iterator: AsyncIterator<Uint8Array | Iterable<Uint8Array>>): Promise<{ value: unknown, rest: Uint8Array[] }> {
  const decoder = new FrameDecoder()
  for (;;) {
    const next = await iterator.next()
    if (next.done === true) throw dfError('DF_ERR_PROTOCOL', 'stream ended before a complete frame')
    let rest: Uint8Array[] | undefined
    let value: unknown
    for (const chunk of toChunks(next.value)) {
      if (rest !== undefined) { rest.push(chunk); continue }
      const frame = decoder.push(chunk)
      if (frame !== undefined) { value = frame.value; rest = [frame.rest] }
    }
    if (rest !== undefined) return { value, rest }
  }
}

/**
 * Serves one piece request on `stream`. Never throws: failures reset the stream and are reported
 * through the return value so the caller can log and count them.
 */
export async function servePiece (stream: ByteStream, open: PieceOpener, options: { signal: AbortSignal, onBytes?: (n: number) => void }): Promise<{ request?: PieceRequest, bytes: number, error?: Error }> {
  const { signal } = options
  const release = abortOn(stream, signal)
  let request: PieceRequest | undefined
  let bytes = 0
  try {
    const iterator = stream[Symbol.asyncIterator]()
    const frame = await readFrame(iterator)
    const parsed = pieceRequest.safeParse(frame.value)
    if (!parsed.success) {
      await sendAll(stream, encodeFrame({ ok: false, code: 'DF_ERR_PROTOCOL', message: 'malformed piece request' }), signal)
      await stream.close({ signal })
      return { bytes, error: dfError('DF_ERR_PROTOCOL', 'malformed piece request') }
    }
    request = parsed.data
    let piece: OpenedPiece | undefined
    try {
      piece = await open(request, signal)
    } catch (err) {
      if (!isDfError(err)) throw err
      await sendAll(stream, encodeFrame({ ok: false, code: err.code, message: err.message.slice(0, 1024) }), signal)
      await stream.close({ signal })
      return { request, bytes, error: err }
    }
    if (piece === undefined) {
      await sendAll(stream, encodeFrame({ ok: false, code: 'DF_ERR_PIECE_UNAVAILABLE', message: `piece ${request.index} of ${request.taskId} not held here` }), signal)
      await stream.close({ signal })
      return { request, bytes }
    }
    await sendAll(stream, encodeFrame({ ok: true, size: piece.size }), signal)
    for await (const chunk of piece.body) {
      await sendAll(stream, chunk, signal)
      bytes += chunk.byteLength
      options.onBytes?.(chunk.byteLength)
    }
    if (bytes !== piece.size) throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: read ${bytes} of ${piece.size} bytes`)
    await stream.close({ signal })
    return { request, bytes }
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err))
    stream.abort(error)
    return request === undefined ? { bytes, error } : { request, bytes, error }
  } finally {
    release()
  }
}

/**
 * Fetches one piece and verifies it against the digest the seed published — never against anything
 * the serving peer says. Resolves to the verified bytes, or throws a DfError:
 * DF_ERR_PIECE_UNAVAILABLE (peer lacks it), DF_ERR_SIZE_MISMATCH, DF_ERR_PIECE_DIGEST_MISMATCH or
 * DF_ERR_PROTOCOL. The stream is always closed or reset when this returns.
 *
 * The bytes are received straight into one buffer (`options.into` when given, so a caller can reuse
 * pooled piece buffers; the result is then a view of it) and hashed once, after the last byte.
 */
export async function fetchPiece (stream: ByteStream, request: PieceRequest, expected: { size: number, digest: string }, options: FetchPieceOptions): Promise<Uint8Array> {
  const { signal } = options
  const release = abortOn(stream, signal)
  // A FIN from the peer ends the piece; libp2p also ends the iterator cleanly when the connection
  // closes under the stream (GoAway, TCP end), which must not pass for the peer's end of data.
  let finished = false
  const onFin = (): void => { finished = true }
  let closeError: Error | undefined
  const onClose = (evt: Event): void => { closeError = (evt as Event & { error?: Error }).error }
  stream.addEventListener?.('remoteCloseWrite', onFin)
  stream.addEventListener?.('close', onClose)
  try {
    await sendAll(stream, encodeFrame(request), signal)
    const iterator = stream[Symbol.asyncIterator]()
    const frame = await readFrame(iterator)
    const header = pieceResponseHeader.safeParse(frame.value)
    if (!header.success) throw dfError('DF_ERR_PROTOCOL', 'malformed piece response header')
    if (!header.data.ok) {
      const { code, message } = header.data
      if (code === 'DF_ERR_PIECE_UNAVAILABLE' || code === 'DF_ERR_PEER_NOT_ALLOWED') throw dfError(code, message)
      throw dfError('DF_ERR_PROTOCOL', `peer refused piece: ${code}: ${message}`)
    }
    if (header.data.size !== expected.size) {
      throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: peer offers ${header.data.size} bytes, expected ${expected.size}`)
    }
    const into = options.into
    if (into !== undefined && into.byteLength < expected.size) throw new RangeError(`receive buffer of ${into.byteLength} bytes for a ${expected.size}-byte piece`)
    const out = into === undefined ? new Uint8Array(expected.size) : into.subarray(0, expected.size)
    const onBytes = options.onBytes
    let received = 0
    const take = (chunk: Uint8Array): void => {
      const n = chunk.byteLength
      if (n === 0) return
      if (received + n > expected.size) {
        throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: peer sent more than ${expected.size} bytes`)
      }
      out.set(chunk, received)
      received += n
      onBytes?.(n)
    }
    for (const chunk of frame.rest) take(chunk)
    while (received < expected.size) {
      const next = await iterator.next()
      if (next.done === true) break
      for (const chunk of toChunks(next.value)) take(chunk)
    }
    if (received !== expected.size) {
      if (stream.addEventListener !== undefined && !finished) {
        throw dfError('DF_ERR_PROTOCOL', `piece ${request.index} of ${request.taskId}: stream closed without the peer ending the piece (connection closed or reset) after ${received} of ${expected.size} bytes${closeError === undefined ? '' : `: ${closeError.message}`}`, { cause: closeError })
      }
      throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: peer ended the stream after ${received} of ${expected.size} bytes`)
    }
    const digester = new Digester('sha256')
    digester.update(out)
    const actual = digester.digest()
    if (actual !== expected.digest) {
      throw dfError('DF_ERR_PIECE_DIGEST_MISMATCH', `piece ${request.index} of ${request.taskId}: got ${actual}, expected ${expected.digest}`)
    }
    await stream.close({ signal })
    return out
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (isDfError(err)) throw err
    if (signal.aborted) throw err
    throw dfError('DF_ERR_PROTOCOL', `piece ${request.index} of ${request.taskId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  } finally {
    stream.removeEventListener?.('remoteCloseWrite', onFin)
    stream.removeEventListener?.('close', onClose)
    release()
  }
}
