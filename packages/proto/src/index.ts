/**
 * @packageDocumentation
 * The Damselfly wire contract and domain primitives, shared by the supernode and the dfclient:
 * digests, the piece layout rule, task identity, the peer API schemas, the libp2p piece protocol,
 * OCI grammar and error bodies, the layered config loader and the error catalogue. No I/O.
 *
 * @example
 * ```ts
 * import { layoutFor, parseDigest } from '@damselfly/proto'
 * const layout = layoutFor(1_073_741_824) // { pieceSize: 16 MiB, pieceCount: 64 }
 * ```
 */
export * from './errors.js'
export * from './digest.js'
export * from './piece-layout.js'
export * from './task.js'
export * from './api/schemas.js'
export * from './api/routes.js'
export * from './api/preheat-feed.js'
export * from './api/allowed-peers.js'
export * from './piece-protocol/frame.js'
export * from './piece-protocol/messages.js'
export * from './piece-protocol/exchange.js'
export * from './config/size.js'
export * from './config/registry-map.js'
export * from './config/layered-config.js'
export * from './oci/grammar.js'
export * from './net/address.js'
export * from './net/registry-policy.js'
export * from './limits/concurrency-gate.js'
export * from './limits/http-limits.js'
export * from './limits/retry.js'
export * from './log-redaction.js'
export * from './rendezvous.js'
