import { createCipheriv, createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { crc32 } from 'node:zlib'

/**
 * Deterministic, incompressible layer blobs: a gzip'd tar holding one file of AES-256-CTR keystream.
 *
 * Both containers are written here byte by byte (a GNU-format tar header, and a gzip member whose
 * deflate stream uses only *stored* blocks), so the digests do not depend on the installed tar, gzip
 * or zlib version: the same (seed, index, size) gives the same digest on every machine, forever.
 * Stored blocks cost 5 bytes per 65,535, about what `gzip -n` produces on random data anyway.
 */

/** Bump when the byte format changes, so old cache entries are never reused. */
const FORMAT = 'damselfly-test-layer-v1'
const CHUNK = 1 << 20
const STORED_MAX = 65_535
const TAR_RECORD = 10_240

export interface LayerBlob {
  /** `sha256:<hex>` of the gzip'd tar (the blob). */
  digest: string
  /** Size of the blob in bytes. */
  size: number
  /** `sha256:<hex>` of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: string
  /** Path of the blob in the content-addressed cache. */
  path: string
}

/** Cache directory: `$DAMSELFLY_IMAGE_CACHE` or `os.tmpdir()/damselfly-test-images-v1`. */
export function imageCacheDir (): string {
  return process.env.DAMSELFLY_IMAGE_CACHE ?? join(tmpdir(), 'damselfly-test-images-v1')
}

/** Path of a blob in the cache: `<cache>/blobs/sha256/<hex>`. */
export function cachedBlobPath (digest: string, cacheDir = imageCacheDir()): string {
  return join(cacheDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''))
}

/**
 * Returns the layer blob for (`seed`, `index`, `fileSize`), generating it into the cache if absent.
 * Generation streams (one 1 MiB chunk in memory at a time); concurrent generators of the same layer
 * each write a private temp file and rename it into place, which is atomic.
 */
export async function layerBlob (seed: string, index: number, fileSize: number, cacheDir = imageCacheDir()): Promise<LayerBlob> {
  const key = createHash('sha256').update(`${FORMAT}\0${seed}\0${index}\0${fileSize}`).digest('hex').slice(0, 32)
  const indexFile = join(cacheDir, 'layers', `${key}.json`)
  try {
    const meta = JSON.parse(await readFile(indexFile, 'utf8')) as Omit<LayerBlob, 'path'>
    const path = cachedBlobPath(meta.digest, cacheDir)
    if ((await stat(path)).size === meta.size) return { ...meta, path }
  } catch {
    // Not cached yet (or a partial entry): generate below.
  }

  await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true })
  await mkdir(join(cacheDir, 'layers'), { recursive: true })
  const work = await mkdtemp(join(cacheDir, 'tmp-'))
  try {
    const tarHash = createHash('sha256')
    const blobHash = createHash('sha256')
    let size = 0
    const tar = tarOfOneFile(`layer-${index}.bin`, fileSize, keystream(seed, index, fileSize))
    const gz = gzipStored(tapHash(tar, tarHash))
    async function * counted (): AsyncGenerator<Buffer> {
      for await (const chunk of gz) {
        blobHash.update(chunk)
        size += chunk.length
        yield chunk
      }
    }
    const tmp = join(work, 'blob')
    await pipeline(Readable.from(counted()), createWriteStream(tmp))
    const meta = { digest: `sha256:${blobHash.digest('hex')}`, size, diffId: `sha256:${tarHash.digest('hex')}` }
    const path = cachedBlobPath(meta.digest, cacheDir)
    await rename(tmp, path)
    await writeFile(join(work, 'meta.json'), JSON.stringify(meta))
    await rename(join(work, 'meta.json'), indexFile)
    return { ...meta, path }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** `size` bytes of AES-256-CTR keystream keyed by (seed, index), in chunks of at most 1 MiB. */
async function * keystream (seed: string, index: number, size: number): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(`${FORMAT}\0key\0${seed}\0${index}`).digest()
  const iv = createHash('sha256').update(`${FORMAT}\0iv\0${seed}\0${index}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-256-ctr', key, iv)
  const zeros = Buffer.alloc(CHUNK)
  for (let left = size; left > 0; left -= CHUNK) {
    yield cipher.update(zeros.subarray(0, Math.min(CHUNK, left)))
  }
}

/** A GNU-format tar (as `tar --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner` writes) of one regular file. */
async function * tarOfOneFile (name: string, size: number, content: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const h = Buffer.alloc(512)
  const field = (off: number, len: number, value: string): void => { h.write(value, off, len, 'ascii') }
  const octal = (off: number, len: number, value: number): void => { field(off, len - 1, value.toString(8).padStart(len - 1, '0')) }
  if (size >= 8 ** 11) throw new Error('tar: file too large for an octal size field')
  field(0, 100, name)
  octal(100, 8, 0o644)
  octal(108, 8, 0)
  octal(116, 8, 0)
  octal(124, 12, size)
  octal(136, 12, 0)
  field(148, 8, '        ')
  field(156, 1, '0')
  field(257, 8, 'ustar  \0')
  let sum = 0
  for (const b of h) sum += b
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ')
  yield h
  let written = 0
  for await (const chunk of content) {
    written += chunk.length
    yield chunk
  }
  if (written !== size) throw new Error(`tar: content was ${written} bytes, header says ${size}`)
  const total = 512 + Math.ceil(size / 512) * 512 + 1024
  const padded = Math.ceil(total / TAR_RECORD) * TAR_RECORD
  yield Buffer.alloc(padded - 512 - size)
}

async function * tapHash (src: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of src) {
    hash.update(chunk)
    yield chunk
  }
}

/** A single gzip member (RFC 1952, mtime 0, OS unix, no name) whose deflate data is stored blocks only. */
async function * gzipStored (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03])
  let crc = 0
  let isize = 0
  let pending: Buffer = Buffer.alloc(0)
  const blocks = (data: Buffer, final: boolean): Buffer => {
    const parts: Buffer[] = []
    let off = 0
    while (data.length - off >= STORED_MAX || (final && off <= data.length)) {
      const len = Math.min(STORED_MAX, data.length - off)
      const last = final && off + len === data.length
      const hdr = Buffer.alloc(5)
      hdr[0] = last ? 1 : 0
      hdr.writeUInt16LE(len, 1)
      hdr.writeUInt16LE(len ^ 0xffff, 3)
      parts.push(hdr, data.subarray(off, off + len))
      off += len
      if (last) break
    }
    pending = data.subarray(off)
    return Buffer.concat(parts)
  }
  for await (const chunk of src) {
    crc = crc32(chunk, crc)
    isize = (isize + chunk.length) % 2 ** 32
    const out = blocks(pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk, false)
    if (out.length > 0) yield out
  }
  yield blocks(pending, true)
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc >>> 0, 0)
  trailer.writeUInt32LE(isize, 4)
  yield trailer
}
