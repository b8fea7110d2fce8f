import { Digester, dfError, parseDigest } from '@damselfly/proto'

/**
 * Passes bytes through while hashing them; after the last byte, throws DF_ERR_BLOB_DIGEST_MISMATCH
 * (after calling `onMismatch`) if they do not hash to `digest`. The caller must destroy its response
 * on that error, so a client never sees wrong bytes reported complete.
 */
export async function * verifyDigest (source: AsyncIterable<Uint8Array>, digest: string, onMismatch?: () => Promise<void>): AsyncGenerator<Uint8Array> {
  const digester = new Digester(parseDigest(digest).algorithm)
  for await (const chunk of source) {
    digester.update(chunk)
    yield chunk
  }
  const actual = digester.digest()
  if (actual !== digest) {
    await onMismatch?.()
    throw dfError('DF_ERR_BLOB_DIGEST_MISMATCH', `blob ${digest} hashed to ${actual}`)
  }
}
