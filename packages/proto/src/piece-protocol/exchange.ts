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
}

/** A readable piece, as handed to the server side by the local store. */
export interface OpenedPiece {
  size: number
  body: AsyncIterable<Uint8Array>
}

/** Looks up a piece; `undefined` when this node does not hold it. */
export type PieceOpener = (request: PieceRequest, signal: AbortSignal) => Promise<OpenedPiece | undefined>

/** Largest slice written per `send()`: yamux frames are 64 KiB, so larger writes only buffer. */
const SEND_SLICE = 256 * 1024

function toChunks (chunk: Uint8Array | Iterable<Uint8Array>): Iterable<Uint8Array> {
  return chunk instanceof Uint8Array ? [chunk] : chunk
}

function abortOn (stream: ByteStream, signal: AbortSignal): () => void {
  const onAbort = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
  if (signal.aborted) onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  return () => { signal.removeEventListener('abort', onAbort) }
}

async function sendAll (stream: ByteStream, data: Uint8Array, signal: AbortSignal): Promise<void> {
  for (let offset = 0; offset < data.byteLength; offset += SEND_SLICE) {
    if (!stream.send(data.subarray(offset, offset + SEND_SLICE))) await stream.onDrain({ signal })
  }
}

/** Reads one frame; returns it with the bytes that followed it on the same iterator. */
async function readFrame (iterator: AsyncIterator<Uint8Array | Iterable<Uint8Array>>): Promise<{ value: unknown, rest: Uint8Array }> {
  const decoder = new FrameDecoder()
  for (;;) {
    const next = await iterator.next()
    if (next.done === true) throw dfError('DF_ERR_PROTOCOL', 'stream ended before a complete frame')
    for (const chunk of toChunks(next.value)) {
      const frame = decoder.push(chunk)
      if (frame !== undefined) return frame
    }
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
    const piece = await open(request, signal)
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
 */
export async function fetchPiece (stream: ByteStream, request: PieceRequest, expected: { size: number, digest: string }, options: { signal: AbortSignal, onBytes?: (n: number) => void }): Promise<Uint8Array> {
  const { signal } = options
  const release = abortOn(stream, signal)
  try {
    await sendAll(stream, encodeFrame(request), signal)
    const iterator = stream[Symbol.asyncIterator]()
    const frame = await readFrame(iterator)
    const header = pieceResponseHeader.safeParse(frame.value)
    if (!header.success) throw dfError('DF_ERR_PROTOCOL', 'malformed piece response header')
    if (!header.data.ok) {
      throw header.data.code === 'DF_ERR_PIECE_UNAVAILABLE'
        ? dfError('DF_ERR_PIECE_UNAVAILABLE', header.data.message)
        : dfError('DF_ERR_PROTOCOL', `peer refused piece: ${header.data.code}: ${header.data.message}`)
    }
    if (header.data.size !== expected.size) {
      throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: peer offers ${header.data.size} bytes, expected ${expected.size}`)
    }
    const out = new Uint8Array(expected.size)
    const digester = new Digester('sha256')
    let received = 0
    const take = (chunk: Uint8Array): void => {
      if (received + chunk.byteLength > expected.size) {
        throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: peer sent more than ${expected.size} bytes`)
      }
      out.set(chunk, received)
      received += chunk.byteLength
      digester.update(chunk)
      options.onBytes?.(chunk.byteLength)
    }
    if (frame.rest.byteLength > 0) take(frame.rest)
    for (;;) {
      if (received === expected.size) break
      const next = await iterator.next()
      if (next.done === true) break
      for (const chunk of toChunks(next.value)) take(chunk)
    }
    if (received !== expected.size) {
      throw dfError('DF_ERR_SIZE_MISMATCH', `piece ${request.index} of ${request.taskId}: stream ended after ${received} of ${expected.size} bytes`)
    }
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
    release()
  }
}
