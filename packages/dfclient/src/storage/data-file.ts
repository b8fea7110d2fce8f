import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { dfError } from '@damselfly/proto'

/**
 * Plain positional I/O on a blob's data file (pieces live at their blob offsets in one sparse file).
 * No bookkeeping here: the cache decides what is held, leased or dropped.
 */

/** Writes `bytes` at `offset`, creating the file if needed. */
export async function writeAt (path: string, bytes: Uint8Array, offset: number): Promise<void> {
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644)
  try {
    let written = 0
    while (written < bytes.byteLength) {
      const r = await fh.write(bytes, written, bytes.byteLength - written, offset + written)
      written += r.bytesWritten
    }
  } finally {
    await fh.close()
  }
}

/** Flushes the file's data to disk (what makes staged pieces durable before their sidecar names them). */
export async function syncData (path: string): Promise<void> {
  const fh = await open(path, constants.O_RDWR)
  try { await fh.datasync() } finally { await fh.close() }
}

/**
 * Yields bytes `[start, end)` in new buffers of at most `chunkSize` bytes. `stillValid` is asked after
 * every read: when the blob was dropped meanwhile, the bytes may belong to another file, and the
 * read fails with DF_ERR_PIECE_UNAVAILABLE instead of yielding them. `label` names the blob in errors.
 */
export async function * readChunks (path: string, start: number, end: number, chunkSize: number, stillValid: () => boolean, label: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    for (let pos = start; pos < end;) {
      const n = Math.min(chunkSize, end - pos)
      const buf = Buffer.allocUnsafeSlow(n)
      let got = 0
      while (got < n) {
        const r = await fh.read(buf, got, n - got, pos + got)
        if (r.bytesRead === 0) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${label} data ends before byte ${pos + got}`)
        got += r.bytesRead
      }
      if (!stillValid()) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${label} was dropped while it was read`)
      pos += n
      yield buf
    }
  } finally {
    await fh.close()
  }
}

/** Bytes `[start, start + length)`, or `undefined` when the file is shorter (treated as not held). */
export async function readExactly (path: string, start: number, length: number): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(length)
  const fh = await open(path, 'r')
  try {
    let read = 0
    while (read < length) {
      const r = await fh.read(out, read, length - read, start + read)
      if (r.bytesRead === 0) return undefined
      read += r.bytesRead
    }
  } finally {
    await fh.close()
  }
  return out
}

/** Read size when hashing a stored piece: small, and one buffer reused for the whole piece. */
const HASH_READ_CHUNK = 256 * 1024

/**
 * Hashes bytes `[start, end)` as stored now, reading into one reused buffer; resolves to
 * `<algorithm>:<hex>`. A file shorter than `end` hashes what is there (the digest then mismatches).
 */
export async function hashRange (path: string, start: number, end: number, algorithm: string): Promise<string> {
  const hash = createHash(algorithm)
  const buf = Buffer.allocUnsafeSlow(Math.min(HASH_READ_CHUNK, Math.max(1, end - start)))
  const fh = await open(path, 'r')
  try {
    for (let pos = start; pos < end;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, end - pos), pos)
      if (bytesRead === 0) break
      hash.update(bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead))
      pos += bytesRead
    }
  } finally {
    await fh.close()
  }
  return `${algorithm}:${hash.digest('hex')}`
}
