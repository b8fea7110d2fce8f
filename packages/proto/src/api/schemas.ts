import { z } from 'zod'
import { tryParseDigest } from '../digest.js'
import { MAX_PIECE_SIZE } from '../piece-layout.js'

/**
 * The supernode peer API (`/api/v1`), as zod schemas shared by the server (validation) and the
 * dfclient's client (typing and response checks). Every list and string has a bound, so a hostile or
 * buggy caller cannot make the supernode allocate without limit.
 */

export const API_PREFIX = '/api/v1'

/** Limits of the peer API; the server enforces them, clients stay under them. */
export const API_LIMITS = {
  maxBodyBytes: 256 * 1024,
  maxAddrs: 16,
  maxAddrLength: 256,
  maxPeerIdLength: 128,
  maxHostnameLength: 253,
  maxUrlLength: 4096,
  maxHeaderValueLength: 16 * 1024,
  maxReportedPieces: 100_000,
  maxWaitMs: 30_000,
  /** Results per `piece-results` call: room for a whole 500-piece blob plus one failed try per piece. */
  maxPieceResults: 1_000,
  maxErrorCodeLength: 64,
  /** A transfer slower than an hour is reported as a failure, not a duration. */
  maxTransferMs: 3_600_000
} as const

export const digestString = z.string().max(200).refine(v => tryParseDigest(v) !== undefined, { message: 'not a supported digest (sha256:<64 hex> or sha512:<128 hex>)' })
export const peerIdString = z.string().min(1).max(API_LIMITS.maxPeerIdLength).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'not a base58 peer id')
export const multiaddrString = z.string().min(1).max(API_LIMITS.maxAddrLength).startsWith('/')

/** A place a peer can be dialled: its libp2p id and multiaddrs (without the /p2p suffix). */
export const peerAddress = z.object({
  peerId: peerIdString,
  addrs: z.array(multiaddrString).max(API_LIMITS.maxAddrs)
}).strict()
export type PeerAddress = z.infer<typeof peerAddress>

// POST /api/v1/peers — announce (idempotent; also the way to come back after a supernode restart).
export const announceRequest = z.object({
  peerId: peerIdString,
  addrs: z.array(multiaddrString).min(1).max(API_LIMITS.maxAddrs),
  hostname: z.string().min(1).max(API_LIMITS.maxHostnameLength),
  version: z.string().max(64).optional()
}).strict()
export type AnnounceRequest = z.infer<typeof announceRequest>

export const announceResponse = z.object({
  peerId: peerIdString,
  /** How often the peer must heartbeat; a peer silent for `ttlMs` is dropped with its holdings. */
  heartbeatIntervalMs: z.number().int().positive(),
  ttlMs: z.number().int().positive(),
  /** The supernode's own libp2p address: it seeds pieces like any peer. */
  supernode: peerAddress
})
export type AnnounceResponse = z.infer<typeof announceResponse>

// POST /api/v1/peers/:peerId/heartbeat → 204; 404 DF_ERR_PEER_UNKNOWN means "announce again".
// DELETE /api/v1/peers/:peerId → 204 (leave: its holdings are forgotten at once).

// POST /api/v1/tasks — register interest in a blob; the reply comes once the size is known.
export const registerTaskRequest = z.object({
  digest: digestString,
  /** The upstream blob URL the supernode fetches on a miss (`<base>/v2/<name>/blobs/<digest>`). */
  url: z.url({ protocol: /^https?$/ }).max(API_LIMITS.maxUrlLength),
  /** Request headers for the back-to-source fetch: only `authorization` is used, and never stored. */
  headers: z.record(z.string().max(64), z.string().max(API_LIMITS.maxHeaderValueLength)).optional(),
  peerId: peerIdString.optional()
}).strict()
export type RegisterTaskRequest = z.infer<typeof registerTaskRequest>

export const taskState = z.enum(['running', 'succeeded', 'failed'])
export type TaskState = z.infer<typeof taskState>

export const taskInfo = z.object({
  taskId: z.string(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  pieceSize: z.number().int().positive(),
  pieceCount: z.number().int().nonnegative(),
  state: taskState
})
export type TaskInfo = z.infer<typeof taskInfo>

// GET /api/v1/tasks/:digest/pieces?peerId=&since=&waitMs=&from=&window= — who holds which piece, with piece digests.
export const piecesQuery = z.object({
  peerId: peerIdString.optional(),
  /**
   * The piece the caller reads next: it fetches only pieces from here to its window's end, so the
   * supernode assigns it pieces there (without it, the caller's lowest-indexed lacking pieces).
   */
  from: z.coerce.number().int().nonnegative().max(API_LIMITS.maxReportedPieces).optional(),
  /**
   * With `from`: list only the published pieces in [from, from + window), the ones the caller can
   * fetch (it reads in order). A streaming dfclient sends its read-ahead window: the reply and the
   * planning behind it then cost O(window), not O(pieces in the blob), which is what a herd of
   * thousands of nodes, each polling on every change of the task, makes the supernode do. Without it
   * every published piece is listed.
   */
  window: z.coerce.number().int().min(1).max(API_LIMITS.maxReportedPieces).optional(),
  /** The `version` of the caller's last reply: with `waitMs`, the call waits until something changes. */
  since: z.coerce.number().int().nonnegative().optional(),
  waitMs: z.coerce.number().int().min(0).max(API_LIMITS.maxWaitMs).optional()
}).strict()
export type PiecesQuery = z.infer<typeof piecesQuery>

export const pieceSource = z.object({
  peerId: peerIdString,
  addrs: z.array(multiaddrString),
  /** True for the supernode's seed, which callers use only when no peer serves the piece. */
  seed: z.boolean()
})
export type PieceSource = z.infer<typeof pieceSource>

/**
 * One piece in a `pieces` reply. The reply lists every piece whose digest is published: the pieces
 * the caller lacks (all of them when it passed no `peerId`) come first, rarest (fewest holders) first
 * with ties by index, then the pieces it already holds. A streaming caller should, inside its
 * read-ahead window, start fetches in this order. The first source of each of the caller's next few lacking pieces is
 * charged with that upload until the caller reports a result (`piece-results`) or holds the piece.
 */
export const pieceAvailability = z.object({
  index: z.number().int().nonnegative(),
  /** SHA-256 of the piece as the seed computed it from upstream bytes: the only digest peers trust. */
  digest: digestString,
  /**
   * Ranked candidates, best first; never the caller itself. The seed comes first only when no peer
   * that could serve the piece has a free upload slot; otherwise it is last, the fallback of last resort.
   */
  sources: z.array(pieceSource)
})
export type PieceAvailability = z.infer<typeof pieceAvailability>

export const piecesResponse = z.object({
  task: taskInfo,
  /** Increases whenever a piece digest or holder is added; pass it back as `since` to long-poll. */
  version: z.number().int().nonnegative(),
  pieces: z.array(pieceAvailability)
})
export type PiecesResponse = z.infer<typeof piecesResponse>

// POST /api/v1/tasks/:digest/pieces — a peer reports pieces it verified and now serves → 204.
export const reportPiecesRequest = z.object({
  peerId: peerIdString,
  pieces: z.array(z.number().int().nonnegative()).min(1).max(API_LIMITS.maxReportedPieces)
}).strict()
export type ReportPiecesRequest = z.infer<typeof reportPiecesRequest>

// POST /api/v1/tasks/:digest/piece-results — a peer reports how its piece transfers went → 204.
// Successes release the source's upload slot and feed its upload rate; a DF_ERR_PIECE_DIGEST_MISMATCH
// quarantines the source for the task (repeated across tasks: for every task, for a while); other
// failures release the slot and count against the source's ranking. 404 DF_ERR_PEER_UNKNOWN when the
// reporter is not announced, DF_ERR_TASK_UNKNOWN for an unknown task.
export const pieceResult = z.object({
  index: z.number().int().nonnegative(),
  /** The peer the piece came from (or was tried from): a peer id, or the supernode's own id for the seed. */
  sourcePeerId: peerIdString,
  ok: z.boolean(),
  /** For failures: the error code, e.g. `DF_ERR_PIECE_DIGEST_MISMATCH`, `DF_ERR_PEER_UNREACHABLE`. */
  code: z.string().min(1).max(API_LIMITS.maxErrorCodeLength).optional(),
  /** For successes: verified bytes received (the piece's length). */
  bytes: z.number().int().nonnegative().max(MAX_PIECE_SIZE).optional(),
  /** Wall time of the transfer, from request to verified last byte. */
  durationMs: z.number().int().nonnegative().max(API_LIMITS.maxTransferMs).optional()
}).strict()
export type PieceResult = z.infer<typeof pieceResult>

export const pieceResultsRequest = z.object({
  peerId: peerIdString,
  results: z.array(pieceResult).min(1).max(API_LIMITS.maxPieceResults)
}).strict()
export type PieceResultsRequest = z.infer<typeof pieceResultsRequest>

/** The error body of every `/api/v1` failure. */
export const apiErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional()
  })
})
export type ApiErrorBody = z.infer<typeof apiErrorBody>
