/**
 * @packageDocumentation
 * The Damselfly supernode: peer API, piece scheduler, back-to-source seed and libp2p piece server.
 *
 * @example
 * ```ts
 * import '@damselfly/proto/polyfill'
 * import pino from 'pino'
 * import { createSupernode, supernodeConfig } from '@damselfly/supernode'
 * const sn = createSupernode(supernodeConfig({ listen: '127.0.0.1:0', p2pListen: ['/ip4/127.0.0.1/tcp/0'], dataDir: '/tmp/sn' }), { logger: pino() })
 * await sn.start()   // logs the "ready" line with httpUrl, peerId, p2pAddrs
 * await sn.stop()
 * ```
 */
export { createSupernode, type Supernode, type SupernodeComponents } from './supernode.js'
export { loadSupernodeConfig, supernodeConfig, supernodeConfigSchema, SUPERNODE_OPTIONS, type SupernodeConfig, type SupernodeConfigInput } from './config.js'
export type { TaskStore, TaskRecord } from './tasks/task-store.js'
export { MemoryTaskStore } from './tasks/memory-task-store.js'
export type { UpstreamFetcher, UpstreamBody } from './seed/upstream-fetch.js'
export type { PreheatJobStore } from './preheat/ports.js'
export type { PreheatJob } from './preheat/job.js'
