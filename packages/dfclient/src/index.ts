/**
 * @packageDocumentation
 * The Damselfly dfclient: a registry mirror on every node that serves containerd/Docker/skopeo pulls,
 * fetching blobs as SHA-256-verified pieces over libp2p from peers and the supernode seed.
 *
 * @example
 * ```ts
 * import '@damselfly/proto/polyfill'
 * import pino from 'pino'
 * import { createDfclient, resolveDaemonConfig } from '@damselfly/dfclient'
 * const config = resolveDaemonConfig({ env: {}, flags: { supernode: ['http://127.0.0.1:8002'], listen: '127.0.0.1:0', p2pListen: ['/ip4/127.0.0.1/tcp/0'], dataDir: '/tmp/dfc' } })
 * const dfclient = createDfclient(config, { logger: pino() })
 * const { httpUrl } = await dfclient.start()
 * await dfclient.stop()
 * ```
 */
export { createDfclient, VERSION, type Dfclient, type DfclientInfo } from './dfclient.js'
export { DAEMON_OPTIONS, daemonConfigSchema, resolveDaemonConfig, type DaemonConfig } from './config.js'
