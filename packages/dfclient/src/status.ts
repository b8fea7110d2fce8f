import { z } from 'zod'

/**
 * `GET /status` on the mirror listener: the daemon's own view of its health, for `dfclient doctor`
 * and operators. No secrets: the token and registry credentials never appear here.
 */
export const daemonStatus = z.object({
  version: z.string(),
  peerId: z.string(),
  p2pAddrs: z.array(z.string()),
  supernode: z.object({
    /** A healthy supernode's base URL (the first), else the first found, else what was configured. */
    url: z.string(),
    /** True while at least one supernode is healthy (pulls go P2P only then). */
    announced: z.boolean(),
    /** Why the last announce failed, while not announced. */
    error: z.string().optional()
  }),
  /** Every supernode found (static URLs and `dns+` names resolved), with its health and identity. */
  supernodes: z.array(z.object({
    url: z.string(),
    healthy: z.boolean(),
    /** Its seed's libp2p peer id (the identity tasks are hashed over). */
    peerId: z.string().optional(),
    error: z.string().optional()
  })).optional(),
  defaultRegistry: z.string(),
  /** Registry hosts with a configured `--registry HOST=URL`. */
  registries: z.array(z.string()),
  cache: z.object({
    usedBytes: z.number(),
    /** Absent: no quota. */
    quotaBytes: z.number().optional(),
    blobs: z.number(),
    /** 0: no TTL. */
    ttlMs: z.number()
  })
})
export type DaemonStatus = z.infer<typeof daemonStatus>
