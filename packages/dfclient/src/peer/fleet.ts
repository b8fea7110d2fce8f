import type { Logger } from 'pino'
import { SupernodeClient } from '../supernode/client.js'
import { SupernodeDiscovery, type Resolve } from '../supernode/discovery.js'
import { formatSupernodeSpec, type SupernodeSpec } from '../supernode/endpoints.js'
import { PieceReporter } from '../supernode/piece-reporter.js'
import { SupernodeRing, type Endpoint } from '../supernode/ring.js'
import { TaskOwners } from '../supernode/task-owners.js'
import type { PieceCache } from '../storage/piece-cache.js'
import { Announcer, type AnnouncerInit, type StagedPieces } from './announcer.js'

/** Something that runs per supernode beside its announcer (the preheat feed follower). */
export interface EndpointAgent {
  start: () => void
  stop: () => Promise<void>
}

export interface SupernodeFleetInit {
  supernodes: readonly SupernodeSpec[]
  token?: string | undefined
  peer: Omit<AnnouncerInit, 'resyncMinIntervalMs'> & { resyncMinIntervalMs?: number }
}

export interface SupernodeFleetComponents {
  cache: PieceCache
  logger: Logger
  staged?: StagedPieces
  /** The supernode URLs (started by the fleet if not yet); made from `supernodes` when absent. */
  discovery?: SupernodeDiscovery
  /** True when the caller already started `discovery`. */
  discoveryStarted?: boolean
  resolve?: Resolve
  /** Starts per-supernode work beside the announcer (called for every supernode discovered). */
  agent?: (endpoint: Endpoint) => EndpointAgent
}

/** One supernode's part of the fleet. */
interface Member {
  endpoint: Endpoint
  announcer: Announcer
  agent: EndpointAgent | undefined
}

/**
 * How long held pieces re-reported to a task's new owner are retried while that supernode does not
 * know the task yet. Why 10 s: the downloads that move the task re-register it there within a poll
 * of noticing (milliseconds to seconds); a blob nobody pulls any more is not worth asking about longer.
 */
const MOVED_TASK_AWAIT_MS = 10_000

/**
 * This dfclient's side of several supernodes: discovery of their URLs (static and `dns+`), one
 * announcer per supernode (every supernode knows every peer: they share no state), the ring that
 * picks each task's owner among the healthy ones, the reporter that sends each task's reports to its
 * owner, and the re-reports a change of owner calls for: when a supernode is lost, the pieces this
 * node holds of every task that moved are reported to the new owner (running downloads do this
 * themselves when they move, see download-opener.ts; a supernode that becomes healthy is told what it
 * owns by its announcer).
 */
export class SupernodeFleet {
  readonly ring = new SupernodeRing()
  readonly owners = new TaskOwners(this.ring)
  readonly reporter: PieceReporter
  readonly #init: SupernodeFleetInit
  readonly #c: SupernodeFleetComponents
  readonly #discovery: SupernodeDiscovery
  readonly #members = new Map<string, Member>()
  #started = false
  #stopped = false
  readonly #discoveryStarted: boolean

  constructor (init: SupernodeFleetInit, components: SupernodeFleetComponents) {
    this.#init = init
    this.#c = components
    this.#discoveryStarted = components.discoveryStarted ?? false
    this.reporter = new PieceReporter(this.owners.reportClient(), init.peer.peerId, components.logger)
    this.#discovery = components.discovery ?? new SupernodeDiscovery({ specs: init.supernodes }, { logger: components.logger, ...(components.resolve === undefined ? {} : { resolve: components.resolve }) })
    this.#discovery.onChange(urls => { void this.#sync(urls) })
    this.ring.onChange(before => { void this.#reReportMoved(before) })
  }

  /** True while at least one supernode is healthy (pulls go P2P only then). */
  get announced (): boolean { return this.ring.healthy().length > 0 }

  /** What `--supernode` said, for messages. */
  get configured (): string { return this.#init.supernodes.map(formatSupernodeSpec).join(', ') }

  /** Resolves names, then makes a first announce attempt to every supernode (in parallel). */
  async start (): Promise<void> {
    this.#started = true
    if (!this.#discoveryStarted) await this.#discovery.start()
    await this.#sync([...this.#discovery.urls])
  }

  /** Stops discovery and every announcer (each leaves its supernode, bounded). */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#discovery.stop()
    await Promise.all([...this.#members.values()].map(async m => { await this.#stopMember(m) }))
    this.#members.clear()
    this.reporter.stop()
  }

  /** Blobs left the cache: every supernode resyncs this peer's holdings (see Announcer.forget). */
  forget (digests: readonly string[]): void {
    for (const m of this.#members.values()) m.announcer.forget(digests)
  }

  /** Per supernode: URL, health, identity and last error (the daemon's /status). */
  status (): Array<{ url: string, healthy: boolean, peerId?: string, error?: string }> {
    return this.ring.all().map(e => ({
      url: e.url,
      healthy: e.healthy,
      ...(e.peerId === undefined ? {} : { peerId: e.peerId }),
      ...(e.lastError === undefined || e.healthy ? {} : { error: e.lastError })
    }))
  }

  async #sync (urls: readonly string[]): Promise<void> {
    if (!this.#started || this.#stopped) return
    const wanted = new Set(urls)
    const gone = [...this.#members.values()].filter(m => !wanted.has(m.endpoint.url))
    for (const m of gone) {
      this.#members.delete(m.endpoint.url)
      this.ring.remove(m.endpoint.url)
      void this.#stopMember(m)
    }
    const added: Member[] = []
    for (const url of urls) {
      if (this.#members.has(url)) continue
      const endpoint = this.ring.add(url, new SupernodeClient({ urls: [url], ...(this.#init.token === undefined ? {} : { token: this.#init.token }) }))
      const announcer = new Announcer(this.#init.peer, {
        client: endpoint.client,
        cache: this.#c.cache,
        reporter: this.reporter,
        logger: this.#c.logger,
        ...(this.#c.staged === undefined ? {} : { staged: this.#c.staged }),
        hooks: {
          healthy: reply => { this.ring.markHealthy(endpoint, reply.supernode.peerId) },
          unreachable: reason => { this.ring.markDown(endpoint, reason) },
          owns: digest => this.owners.endpointFor(digest) === endpoint
        }
      })
      const member: Member = { endpoint, announcer, agent: this.#c.agent?.(endpoint) }
      this.#members.set(url, member)
      added.push(member)
    }
    await Promise.all(added.map(async m => {
      await m.announcer.start()
      if (!this.#stopped) m.agent?.start()
    }))
  }

  async #stopMember (m: Member): Promise<void> {
    await m.agent?.stop()
    await m.announcer.stop()
  }

  /** After the healthy set changed: re-report the held pieces of every task whose owner changed. */
  async #reReportMoved (before: readonly Endpoint[]): Promise<void> {
    if (this.#stopped) return
    const after = this.ring.healthy()
    // A supernode that became healthy gets its tasks' pieces from its own announcer's re-report;
    // only a supernode lost leaves tasks whose new owner would not hear of them.
    if (!before.some(e => !after.includes(e))) return
    const moved = (digest: string): boolean => {
      if (this.owners.active(digest)) return false
      const now = this.ring.owner(digest, after)
      return now !== undefined && now !== this.ring.owner(digest, before)
    }
    let blobs: Array<{ digest: string, pieces: number[] }>
    try {
      blobs = (await this.#c.cache.list()).map(b => ({ digest: b.digest, pieces: [...b.pieces.keys()] }))
    } catch (err) {
      this.#c.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'listing the cache for a re-report failed')
      return
    }
    const all = [...blobs, ...this.#c.staged?.() ?? []].filter(b => b.pieces.length > 0 && moved(b.digest))
    for (const b of all) this.reporter.report(b.digest, b.pieces, undefined, { awaitTaskMs: MOVED_TASK_AWAIT_MS })
    if (all.length > 0) this.#c.logger.info({ blobs: all.length, supernodes: after.map(e => e.url) }, 'supernodes changed; re-reporting held pieces to the tasks\' new owners')
  }
}
