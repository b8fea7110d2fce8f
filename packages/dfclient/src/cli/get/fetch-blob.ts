import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Digester, dfError, parseDigest } from '@damselfly/proto'
import type { DownloadOpener } from '../../mirror/blob-handler.js'

export interface BlobToFetch {
  digest: string
  /** Upstream blob URL (what the supernode fetches on a cluster-wide miss). */
  url: string
  authorization?: string | undefined
  /** Expected size from a manifest, checked against the supernode's. */
  size?: number
}

export interface FetchedBlob {
  digest: string
  size: number
  path: string
  /** Bytes that came straight from the upstream after P2P failed mid-blob (0 normally). */
  upstreamBytes: number
}

/**
 * Downloads one blob through the P2P network into `path`: pieces verified as they arrive, the whole
 * blob hashed again here as it is written (so success never rests on one check), written to
 * `path.part` and renamed only once size and digest match. On any failure the partial file is removed
 * and the error thrown (DF_ERR_BLOB_DIGEST_MISMATCH, DF_ERR_SIZE_MISMATCH, or why P2P failed).
 */
export async function fetchBlobToFile (openDownload: DownloadOpener, blob: BlobToFetch, path: string, onBytes: (n: number) => void, signal: AbortSignal): Promise<FetchedBlob> {
  const { download, upstreamFrom } = await openDownload({ digest: blob.digest, url: blob.url, ...(blob.authorization === undefined ? {} : { authorization: blob.authorization }) }, signal)
  const size = download.task.size
  if (blob.size !== undefined && blob.size !== size) {
    throw dfError('DF_ERR_SIZE_MISMATCH', `${blob.digest}: the manifest says ${blob.size} bytes, the registry ${size}`)
  }
  const part = `${path}.part`
  const digester = new Digester(parseDigest(blob.digest).algorithm)
  let written = 0
  const check = new Transform({
    transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      digester.update(chunk)
      written += chunk.byteLength
      onBytes(chunk.byteLength)
      cb(null, chunk)
    }
  })
  try {
    await pipeline(download.read({ start: 0, end: size - 1 }, signal), check, createWriteStream(part, { mode: 0o644 }), { signal })
    if (written !== size) throw dfError('DF_ERR_SIZE_MISMATCH', `${blob.digest}: received ${written} of ${size} bytes`)
    const actual = digester.digest()
    if (actual !== blob.digest) throw dfError('DF_ERR_BLOB_DIGEST_MISMATCH', `${blob.digest}: the bytes received hash to ${actual}`)
    await rename(part, path)
  } catch (err) {
    await rm(part, { force: true })
    throw err
  }
  const from = upstreamFrom()
  return { digest: blob.digest, size, path, upstreamBytes: from === undefined ? 0 : size - from }
}
