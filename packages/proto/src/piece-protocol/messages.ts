import { z } from 'zod'
import { digestString } from '../api/schemas.js'

/** libp2p protocol id of the piece exchange. Bump the version on any incompatible change. */
export const PIECE_PROTOCOL = '/damselfly/piece/1.0.0'

/** Request: the task (blob digest) and the piece index wanted. */
export const pieceRequest = z.object({
  taskId: digestString,
  index: z.number().int().nonnegative().max(1_000_000)
}).strict()
export type PieceRequest = z.infer<typeof pieceRequest>

/**
 * Response header. On `ok`, exactly `size` raw bytes follow and the server half-closes. On failure the
 * server closes after the header; `code` is a catalogue code such as DF_ERR_PIECE_UNAVAILABLE.
 */
export const pieceResponseHeader = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), size: z.number().int().nonnegative().max(64 * 1024 * 1024) }),
  z.object({ ok: z.literal(false), code: z.string().max(64), message: z.string().max(1024) })
])
export type PieceResponseHeader = z.infer<typeof pieceResponseHeader>
