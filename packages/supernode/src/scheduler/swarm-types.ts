import type { ErrorCode, PieceSource } from '@damselfly/proto'
import * as C from './constants.js'

export interface SourceAddress {
  peerId: string
  addrs: readonly string[]
}

/** Options; every one defaults to the constant of the same name in `constants.ts`. */
export interface SwarmInit {
  peerTtlMs?: number
  maxUploadsPerPeer?: number
  maxUploadsSeed?: number
  assignmentTtlMs?: number
  assignmentWindow?: number
  activePieces?: number
  rateWindowMs?: number
  failuresBeforeDemotion?: number
  taskQuarantineMs?: number
  globalQuarantineStrikes?: number
  strikeWindowMs?: number
  globalQuarantineMs?: number
  maxSourcesPerPiece?: number
  maxHoldersRanked?: number
  maxUsableSearch?: number
  seedFanoutPerPiece?: number
  seedClaimTtlMs?: number
  seedArrivalGraceMs?: number
  sourceWaitLimitMs?: number
  slowSeedTransfers?: number
  seedTransferEwma?: number
  maxStretchedWaitMs?: number
}

export interface SwarmComponents {
  now: () => number
  /** The supernode's own seed address (it can change once its libp2p node has started). */
  seed: () => SourceAddress
  /** Called once per changed task after an event completes; must not call back into the swarm. */
  onTaskChanged?: (taskId: string) => void
}

/** One piece of a reply: its index and ranked sources (the caller adds the digest). */
export interface PiecePlan {
  index: number
  sources: PieceSource[]
}

/** What a requester reports about one transfer. */
export interface TransferResult {
  index: number
  sourcePeerId: string
  ok: boolean
  code?: string | undefined
  bytes?: number | undefined
  /** How long the transfer took, as the requester measured it. */
  durationMs?: number | undefined
}

/** A quarantine an event started, for the caller to log. */
export interface QuarantineStarted {
  peerId: string
  scope: 'task' | 'global'
}

/** The result code that quarantines a source: the piece it served failed SHA-256 verification. */
export const DIGEST_MISMATCH_CODE = 'DF_ERR_PIECE_DIGEST_MISMATCH' satisfies ErrorCode

export type Options = Required<SwarmInit>

/** Fills every option left out of `init` with the constant of the same name in `constants.ts`. */
export function resolveOptions (init: SwarmInit): Options {
  return {
    peerTtlMs: init.peerTtlMs ?? C.PEER_TTL_MS,
    maxUploadsPerPeer: init.maxUploadsPerPeer ?? C.MAX_UPLOADS_PER_PEER,
    maxUploadsSeed: init.maxUploadsSeed ?? C.MAX_UPLOADS_SEED,
    assignmentTtlMs: init.assignmentTtlMs ?? C.ASSIGNMENT_TTL_MS,
    assignmentWindow: init.assignmentWindow ?? C.ASSIGNMENT_WINDOW,
    activePieces: init.activePieces ?? C.ACTIVE_PIECES,
    rateWindowMs: init.rateWindowMs ?? C.RATE_WINDOW_MS,
    failuresBeforeDemotion: init.failuresBeforeDemotion ?? C.FAILURES_BEFORE_DEMOTION,
    taskQuarantineMs: init.taskQuarantineMs ?? C.TASK_QUARANTINE_MS,
    globalQuarantineStrikes: init.globalQuarantineStrikes ?? C.GLOBAL_QUARANTINE_STRIKES,
    strikeWindowMs: init.strikeWindowMs ?? C.STRIKE_WINDOW_MS,
    globalQuarantineMs: init.globalQuarantineMs ?? C.GLOBAL_QUARANTINE_MS,
    maxSourcesPerPiece: init.maxSourcesPerPiece ?? C.MAX_SOURCES_PER_PIECE,
    maxHoldersRanked: init.maxHoldersRanked ?? C.MAX_HOLDERS_RANKED,
    maxUsableSearch: init.maxUsableSearch ?? C.MAX_USABLE_SEARCH,
    seedFanoutPerPiece: init.seedFanoutPerPiece ?? C.SEED_FANOUT_PER_PIECE,
    seedClaimTtlMs: init.seedClaimTtlMs ?? C.SEED_CLAIM_TTL_MS,
    seedArrivalGraceMs: init.seedArrivalGraceMs ?? C.SEED_ARRIVAL_GRACE_MS,
    sourceWaitLimitMs: init.sourceWaitLimitMs ?? C.SOURCE_WAIT_LIMIT_MS,
    slowSeedTransfers: init.slowSeedTransfers ?? C.SLOW_SEED_TRANSFERS,
    seedTransferEwma: init.seedTransferEwma ?? C.SEED_TRANSFER_EWMA,
    maxStretchedWaitMs: init.maxStretchedWaitMs ?? C.MAX_STRETCHED_WAIT_MS
  }
}
