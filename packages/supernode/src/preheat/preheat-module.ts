import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { RegistryTargetPolicy, TaskInfo } from '@damselfly/proto'
import type { SupernodeConfig } from '../config.js'
import type { RegisterInput } from '../seed/back-to-source.js'
import { policyAgent } from '../seed/registry-access.js'
import type { TaskBoard } from '../tasks/task-board.js'
import type { HarborRoutesDeps } from './http/harbor-routes.js'
import { LevelPreheatJobStore } from './level-job-store.js'
import type { PreheatJobStore } from './ports.js'
import { PreheatService } from './preheat-service.js'
import { createManifestFetcher, createTokenFetcher } from './registry-http.js'
import { mergeCredentials, parseDockerConfig, type RegistryCredentials } from './registry-credentials.js'
import { createBlobSeeder } from './seed-adapter.js'
import { seedHost } from './seed-host.js'

/** The preheat feature as the supernode's composition root wires it. */
export interface PreheatModule {
  service: PreheatService
  /** What the HTTP app needs to serve Harbor's APIs and the peer feed. */
  http: HarborRoutesDeps
  /** Reads the credentials file, opens the job store, resumes unfinished jobs. Call after the task board loaded. */
  start: () => Promise<void>
  /** Ends job runs (they stay unfinished in the store, to resume) and closes the store. Call before the seed stops. */
  stop: () => Promise<void>
}

export function createPreheatModule (config: SupernodeConfig, deps: {
  logger: Logger
  now: () => number
  board: TaskBoard
  register: (input: RegisterInput) => Promise<TaskInfo>
  store?: PreheatJobStore | undefined
  /** Told the size of every manifest a preheat fetched (its blobs are counted by the seed). */
  onUpstreamBytes?: ((n: number) => void) | undefined
  /** Where manifest and token fetches may go (the seed's registry policy); absent = anywhere. */
  policy?: RegistryTargetPolicy | undefined
}): PreheatModule {
  const store = deps.store ?? new LevelPreheatJobStore(join(config.dataDir, 'preheat'))
  let credentials: RegistryCredentials = mergeCredentials(new Map(), config.registryAuth)
  let open = false
  // A preheat URL, or a registry's token realm, must not point the supernode at a private address.
  const policy = deps.policy
  const dispatcher = policy === undefined ? undefined : policyAgent(policy, 30_000)
  const fetchManifest = createManifestFetcher(dispatcher)
  const fetchToken = createTokenFetcher(dispatcher)
  const service = new PreheatService({
    store,
    seeder: createBlobSeeder({ register: deps.register, board: deps.board }),
    fetchManifest: async (url, headers, signal) => {
      policy?.check(url)
      const manifest = await fetchManifest(url, headers, signal)
      deps.onUpstreamBytes?.(manifest.body.byteLength)
      return manifest
    },
    fetchToken: async (req, signal) => { policy?.check(req.realm); return await fetchToken(req, signal) },
    ...(policy === undefined ? {} : { checkUrl: (url: string) => { policy.check(url) } }),
    credentials: () => credentials,
    defaults: { platforms: config.preheatPlatforms, concurrency: config.preheatConcurrency, timeoutMs: config.preheatTimeout },
    logger: deps.logger,
    now: deps.now
  })
  return {
    service,
    http: { preheat: service, seed: seedHost(config.listen.host), preheatToken: config.preheatToken, preheatAuthHeader: config.preheatAuthHeader },
    start: async () => {
      const path = config.registryAuthFile
      if (path !== undefined) {
        credentials = mergeCredentials(parseDockerConfig(await readFile(path, 'utf8'), path), config.registryAuth)
      }
      await store.open()
      open = true
      await service.start()
      if (config.preheatToken === undefined) deps.logger.warn('no --preheat-token set: the Harbor preheat APIs are open to anyone who can reach them')
    },
    stop: async () => {
      await service.stop()
      if (open) {
        open = false
        await store.close()
      }
    }
  }
}
