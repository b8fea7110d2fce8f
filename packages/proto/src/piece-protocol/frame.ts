import { dfError } from '../errors.js'

/**
 * Frames of the piece protocol: an unsigned LEB128 (varint) length, then that many bytes of UTF-8
 * JSON. Only the small request and response headers are framed; piece bytes follow the response
 * header raw, so a 64 MiB piece never sits in a length-prefixed buffer (libp2p's `lpStream` caps
 * messages at 4 MiB — LIBP2P.md §5.3).
 */
export const MAX_FRAME_BYTES = 16 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame (value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value))
  if (body.byteLength > MAX_FRAME_BYTES) throw dfError('DF_ERR_PROTOCOL', `frame of ${body.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)
  const prefix: number[] = []
  let n = body.byteLength
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n > 0) byte |= 0x80
    prefix.push(byte)
  } while (n > 0)
  const out = new Uint8Array(prefix.length + body.byteLength)
  out.set(prefix, 0)
  out.set(body, prefix.length)
  return out
}

/**
 * Accumulates bytes until one frame is complete. `push` returns the decoded JSON value and any bytes
 * after the frame (the start of the raw body), or `undefined` while more bytes are needed.
 */
export class FrameDecoder {
  #buffered: Uint8Array[] = []
  #length = 0

  push (chunk: Uint8Array): { value: unknown, rest: Uint8Array } | undefined {
    this.#buffered.push(chunk)
    this.#length += chunk.byteLength
    const all = this.#buffered.length === 1 ? chunk : concat(this.#buffered, this.#length)
    this.#buffered = [all]
    let size = 0
    let shift = 0
    let offset = 0
    for (;;) {
      if (offset >= all.byteLength) return undefined
      const byte = all[offset++] as number
      size |= (byte & 0x7f) << shift
      if ((byte & 0x80) === 0) break
      shift += 7
      if (shift > 21) throw dfError('DF_ERR_PROTOCOL', 'frame length prefix too long')
    }
    if (size > MAX_FRAME_BYTES) throw dfError('DF_ERR_PROTOCOL', `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`)
    if (all.byteLength - offset < size) return undefined
    let value: unknown
    try {
      value = JSON.parse(decoder.decode(all.subarray(offset, offset + size)))
    } catch (err) {
      throw dfError('DF_ERR_PROTOCOL', 'frame is not valid UTF-8 JSON', { cause: err })
    }
    return { value, rest: all.subarray(offset + size) }
  }
}

function concat (chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length)
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.byteLength
  }
  return out
}
