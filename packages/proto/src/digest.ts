import { createHash, type Hash } from 'node:crypto'
import { dfError } from './errors.js'

/** Algorithms Damselfly can verify, with the hex length of their digests. */
const ALGORITHMS = { sha256: 64, sha512: 128 } as const
export type DigestAlgorithm = keyof typeof ALGORITHMS

/** A parsed, validated content digest such as `sha256:9f86…`. */
export interface Digest {
  readonly algorithm: DigestAlgorithm
  readonly hex: string
  /** The canonical `<algorithm>:<hex>` form. */
  readonly value: string
}

const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-f0-9]+)$/

/** Parses a digest string; returns `undefined` for anything that is not a supported, well-formed digest. */
export function tryParseDigest (value: string): Digest | undefined {
  if (value.length > 200) return undefined
  const m = DIGEST_RE.exec(value)
  if (m === null) return undefined
  const algorithm = m[1] as string
  const hex = m[2] as string
  if (!Object.hasOwn(ALGORITHMS, algorithm)) return undefined
  if (hex.length !== ALGORITHMS[algorithm as DigestAlgorithm]) return undefined
  return { algorithm: algorithm as DigestAlgorithm, hex, value }
}

/** Parses a digest string or throws `DF_ERR_DIGEST_INVALID` naming the input. */
export function parseDigest (value: string): Digest {
  const d = tryParseDigest(value)
  if (d === undefined) throw dfError('DF_ERR_DIGEST_INVALID', `invalid digest ${JSON.stringify(value.slice(0, 100))}`)
  return d
}

/** An incremental hasher for one digest algorithm. */
export class Digester {
  readonly #hash: Hash
  readonly #algorithm: DigestAlgorithm
  #bytes = 0

  constructor (algorithm: DigestAlgorithm = 'sha256') {
    this.#algorithm = algorithm
    this.#hash = createHash(algorithm)
  }

  update (chunk: Uint8Array): void {
    this.#hash.update(chunk)
    this.#bytes += chunk.byteLength
  }

  get bytes (): number { return this.#bytes }

  /** Finishes the hash and returns `<algorithm>:<hex>`. Call once. */
  digest (): string {
    return `${this.#algorithm}:${this.#hash.digest('hex')}`
  }
}

/** `sha256:<hex>` of a buffer. */
export function sha256Of (data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}
