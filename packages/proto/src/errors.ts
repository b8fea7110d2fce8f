/**
 * The Damselfly error catalogue. Every error that crosses a module or process boundary is a `DfError`
 * with a stable string `code` (`DF_ERR_<AREA>_<WHAT>`). Match on `code`, never on `instanceof`
 * across packages, and never on messages. Codes are mapped to HTTP once, at each binary's edge;
 * `httpStatus` is the default for that mapping. Every code is documented in docs/errors.md (a test
 * keeps the two in step).
 */
export class DfError extends Error {
  readonly code: string
  readonly httpStatus: number
  readonly details: Record<string, unknown> | undefined

  constructor (code: string, message: string, options: { httpStatus?: number, cause?: unknown, details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DfError'
    this.code = code
    this.httpStatus = options.httpStatus ?? 500
    this.details = options.details
  }
}

/** True for any error carrying a Damselfly code, including copies of this module loaded twice. */
export function isDfError (err: unknown): err is DfError {
  if (!(err instanceof Error)) return false
  const e = err as Error & { code?: unknown, httpStatus?: unknown }
  return typeof e.code === 'string' && e.code.startsWith('DF_ERR_') && typeof e.httpStatus === 'number'
}

interface ErrorSpec { status: number, summary: string }

/**
 * Code → default HTTP status and one-line meaning. The single list from which errors are made.
 */
export const ERROR_CATALOGUE = {
  // Input checks at either HTTP edge.
  DF_ERR_BAD_REQUEST: { status: 400, summary: 'The request body, query or path failed validation.' },
  DF_ERR_DIGEST_INVALID: { status: 400, summary: 'A digest is not `<algorithm>:<hex>` with a supported algorithm and length.' },
  DF_ERR_NAME_INVALID: { status: 400, summary: 'A repository name does not match the OCI name grammar.' },
  DF_ERR_RANGE_INVALID: { status: 416, summary: 'A Range header cannot be satisfied for the blob size.' },
  DF_ERR_BODY_TOO_LARGE: { status: 413, summary: 'A request body exceeded its limit.' },
  DF_ERR_NOT_FOUND: { status: 404, summary: 'The route or resource does not exist.' },
  DF_ERR_METHOD_NOT_ALLOWED: { status: 405, summary: 'The route exists but not for this method.' },
  DF_ERR_UNAUTHORIZED: { status: 401, summary: 'The cluster or preheat token is missing or wrong.' },
  DF_ERR_TOO_MANY_REQUESTS: { status: 429, summary: 'The server is at its limit of concurrent requests and its wait queue is full (or the wait ran out); retry after the `Retry-After` seconds.' },
  // Supernode tasks and peers.
  DF_ERR_PEER_UNKNOWN: { status: 404, summary: 'The peer has not announced itself, or its registration expired.' },
  DF_ERR_TASK_UNKNOWN: { status: 404, summary: 'No task exists for this digest.' },
  DF_ERR_TASK_FAILED: { status: 502, summary: 'The task failed (upstream error or digest mismatch) and holds no usable data.' },
  DF_ERR_TOO_MANY_TASKS: { status: 503, summary: 'The supernode is at its limit of concurrent back-to-source fetches.' },
  // Upstream registries.
  DF_ERR_UPSTREAM_REJECTED: { status: 502, summary: 'The upstream registry answered with an error status (401, 403, 404, …); the status is in details.' },
  DF_ERR_UPSTREAM_UNREACHABLE: { status: 502, summary: 'The upstream registry could not be reached or reset the connection.' },
  DF_ERR_UPSTREAM_TIMEOUT: { status: 504, summary: 'The upstream registry did not answer within the time limit.' },
  DF_ERR_UPSTREAM_SIZE_UNKNOWN: { status: 502, summary: 'The upstream gave no Content-Length for a blob.' },
  DF_ERR_REGISTRY_NOT_ALLOWED: { status: 403, summary: 'The registry host is not allowed by configuration: loopback, private and link-local targets (cloud metadata included) need an explicit `--registry HOST=URL` entry.' },
  // Integrity.
  DF_ERR_PIECE_DIGEST_MISMATCH: { status: 502, summary: 'A piece did not hash to the digest the seed computed.' },
  DF_ERR_BLOB_DIGEST_MISMATCH: { status: 502, summary: 'A whole blob did not hash to its digest.' },
  DF_ERR_SIZE_MISMATCH: { status: 502, summary: 'A blob or piece had a different length than announced.' },
  // Piece protocol.
  DF_ERR_PIECE_UNAVAILABLE: { status: 404, summary: 'The peer does not hold the requested piece.' },
  DF_ERR_PROTOCOL: { status: 502, summary: 'A peer broke the piece protocol (bad frame, oversize header, early end).' },
  DF_ERR_PEER_UNREACHABLE: { status: 502, summary: 'A peer could not be dialled.' },
  DF_ERR_PEER_NOT_ALLOWED: { status: 403, summary: 'A libp2p dialer asked for a piece but is not a peer the supernode has registered; the piece is refused.' },
  // Harbor P2P preheat (the preheat APIs and their jobs).
  DF_ERR_PREHEAT_UNAUTHORIZED: { status: 401, summary: 'A preheat API call lacked the configured preheat token (Bearer or custom header) or sent a wrong one.' },
  DF_ERR_PREHEAT_JOB_UNKNOWN: { status: 404, summary: 'No preheat job has this id (never created, or pruned after its retention).' },
  DF_ERR_PREHEAT_URL_INVALID: { status: 400, summary: 'A preheat URL is not `<scheme>://<host>/v2/<name>/manifests/<reference>`.' },
  DF_ERR_PREHEAT_MANIFEST_INVALID: { status: 502, summary: 'The image manifest is not JSON, too large, of an unsupported type, or does not match its digest.' },
  DF_ERR_PREHEAT_NO_PLATFORM: { status: 422, summary: 'The image index lists no manifest for the requested platforms; the available ones are in the message.' },
  DF_ERR_PREHEAT_TIMEOUT: { status: 504, summary: 'A preheat job did not finish within its timeout.' },
  DF_ERR_PREHEAT_INTERRUPTED: { status: 503, summary: 'The supernode restarted during a preheat job that could not resume (its registry credentials were held in memory only).' },
  DF_ERR_PREHEAT_PEER_FAILED: { status: 502, summary: 'An `all_peers` preheat reached the seed but one or more peers failed to fetch the image or went away.' },
  // The dfclient's piece cache and its command-line tools (get, install, doctor).
  DF_ERR_CACHE_FULL: { status: 507, summary: 'The piece cache is at its quota and every cached blob is in use or pinned; the piece is handed to its reader without being cached.' },
  DF_ERR_SOURCE_INVALID: { status: 400, summary: '`dfclient get` was given neither a blob URL (`http(s)://host/v2/<name>/blobs/<digest>`) nor an image reference.' },
  DF_ERR_MANIFEST_INVALID: { status: 502, summary: 'An image manifest fetched by `dfclient get` or `doctor` is not JSON, of an unsupported type, lists no matching platform, or does not match its digest.' },
  DF_ERR_RUNTIME_CONFIG_INVALID: { status: 500, summary: 'An existing container-runtime config file (hosts.toml, daemon.json, registries.conf) cannot be parsed, so `dfclient install` leaves it untouched.' },
  // Lifecycle and configuration.
  DF_ERR_CONFIG_INVALID: { status: 500, summary: 'Configuration failed validation; every problem is listed.' },
  DF_ERR_SUPERNODE_UNAVAILABLE: { status: 503, summary: 'No supernode answered.' },
  DF_ERR_SHUTTING_DOWN: { status: 503, summary: 'The process is stopping and takes no new work.' },
  DF_ERR_INTERNAL: { status: 500, summary: 'An unexpected failure; the log has the cause.' }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

/** Makes a catalogued error; the HTTP status defaults to the catalogue's. */
export function dfError (code: ErrorCode, message: string, options: { cause?: unknown, details?: Record<string, unknown>, httpStatus?: number } = {}): DfError {
  return new DfError(code, message, { httpStatus: ERROR_CATALOGUE[code].status, ...options })
}
