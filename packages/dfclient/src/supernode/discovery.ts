import { lookup } from 'node:dns/promises'
import type { Logger } from 'pino'
import { addressUrl, formatSupernodeSpec, type SupernodeSpec } from './endpoints.js'
import { RefreshLoop } from '../refresh-loop.js'

/** Resolves a name to its addresses (the port; tests pass a fake). */
export type Resolve = (host: string, signal: AbortSignal) => Promise<string[]>

/**
 * How often `dns+` names are resolved again. Why 30 s: a supernode pod that becomes ready (or is
 * replaced with a new IP) is used within half a minute, while a fleet of 10,000 dfclients costs the
 * cluster DNS ~330 lookups a second at most, well inside what CoreDNS serves. A supernode that dies
 * is noticed sooner, by its failed heartbeats and calls (health), not by DNS.
 */
export const DNS_REFRESH_MS = 30_000
/** One lookup may take this long; a resolver that hangs must not stall discovery. */
export const DNS_TIMEOUT_MS = 5_000
/** Addresses used per name at most (sorted first, so every dfclient keeps the same ones). */
export const MAX_ADDRESSES_PER_NAME = 32

/** The system resolver (getaddrinfo: /etc/hosts, search domains, the cluster DNS), bounded in time. */
export const systemResolve: Resolve = async (host, signal) => {
  const lookedUp = lookup(host, { all: true, verbatim: true })
  // getaddrinfo cannot be cancelled: the race bounds how long we wait, not the lookup itself.
  const aborted = new Promise<never>((_resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason instanceof Error ? signal.reason : new Error('DNS lookup aborted')) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  lookedUp.catch(() => undefined)
  return (await Promise.race([lookedUp, aborted])).map(a => a.address)
}

export interface DiscoveryInit {
  specs: readonly SupernodeSpec[]
  refreshMs?: number
  timeoutMs?: number
}

/**
 * The set of supernode base URLs: the static ones as given, plus every address each `dns+` name
 * resolves to, looked up at start and every `refreshMs`. A lookup that fails or returns nothing keeps
 * the name's last good addresses (a DNS hiccup must not drop every supernode) and is logged.
 */
export class SupernodeDiscovery {
  readonly #init: DiscoveryInit
  readonly #resolve: Resolve
  readonly #logger: Logger
  /** Spec index → its last good URLs. */
  readonly #resolved = new Map<number, string[]>()
  readonly #listeners = new Set<(urls: string[]) => void>()
  #urls: string[] = []
  /** The same list as `urls`, as one array updated in place (see `live`). */
  readonly #live: string[] = []
  readonly #loop: RefreshLoop

  constructor (init: DiscoveryInit, components: { logger: Logger, resolve?: Resolve }) {
    this.#init = init
    this.#resolve = components.resolve ?? systemResolve
    this.#logger = components.logger
    this.#loop = new RefreshLoop(async () => { await this.refresh() }, init.refreshMs ?? DNS_REFRESH_MS)
    this.#urls = this.#collect()
    this.#live.push(...this.#urls)
  }

  /** The current URLs (static ones at once; resolved ones after `start`). */
  get urls (): readonly string[] { return this.#urls }

  /**
   * The current URLs as one array that changes in place: for consumers that read the list each time
   * they use it and take a plain array (the piece server's allow-list).
   */
  get live (): readonly string[] { return this.#live }

  /** Called with the new URL list whenever it changes. */
  onChange (listener: (urls: string[]) => void): void { this.#listeners.add(listener) }

  /** Resolves every name once (bounded), then keeps refreshing in the background. */
  async start (): Promise<void> {
    await this.refresh()
    // Only names change: a list of plain URLs is never looked at again.
    if (this.#init.specs.some(s => s.kind === 'dns')) this.#loop.start()
  }

  stop (): void {
    this.#loop.stop()
  }

  /** Resolves every `dns+` name now. */
  async refresh (): Promise<void> {
    await Promise.all(this.#init.specs.map(async (spec, i) => {
      if (spec.kind !== 'dns') return
      try {
        const addrs = await this.#resolve(spec.host, AbortSignal.timeout(this.#init.timeoutMs ?? DNS_TIMEOUT_MS))
        if (addrs.length === 0) throw new Error('no addresses')
        const urls = [...new Set(addrs)].sort().slice(0, MAX_ADDRESSES_PER_NAME).map(a => addressUrl(spec, a))
        this.#resolved.set(i, urls)
      } catch (err) {
        const kept = this.#resolved.get(i) ?? []
        this.#logger.warn({ supernode: formatSupernodeSpec(spec), err: err instanceof Error ? err.message : String(err), kept }, 'resolving the supernode name failed; keeping its last addresses')
      }
    }))
    if (this.#loop.stopped) return
    const next = this.#collect()
    if (next.join('\n') === this.#urls.join('\n')) return
    this.#logger.info({ supernodes: next }, 'supernode set changed')
    this.#urls = next
    this.#live.splice(0, this.#live.length, ...next)
    for (const l of this.#listeners) l(next)
  }

  #collect (): string[] {
    const out: string[] = []
    this.#init.specs.forEach((spec, i) => { out.push(...(spec.kind === 'url' ? [spec.url] : this.#resolved.get(i) ?? [])) })
    return [...new Set(out)]
  }
}
