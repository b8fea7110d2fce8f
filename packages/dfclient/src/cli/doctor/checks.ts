import { join } from 'node:path'
import { request } from 'undici'
import { parse, type TomlTable } from 'smol-toml'
import { daemonStatus, type DaemonStatus } from '../../status.js'
import { containerdConfigPath } from '../install/containerd.js'
import { readIfExists } from '../install/file-change.js'
import { DNS_TIMEOUT_MS, systemResolve } from '../../supernode/discovery.js'
import { addressUrl, parseSupernodeSpec } from '../../supernode/endpoints.js'
import { DEFAULT_CONFIG_PATHS, type Runtime } from '../install/install.js'
import { PODMAN_DROPIN } from '../install/podman.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

/** One line of the doctor's report. `fail` makes the exit status non-zero. */
export interface Check {
  name: string
  status: CheckStatus
  detail: string
}

/** GET with a short deadline; `undefined` status with the error when nothing answered. */
export async function probe (url: string, headers: Record<string, string> = {}): Promise<{ status?: number, text: string, error?: string }> {
  try {
    const res = await request(url, { headers, signal: AbortSignal.timeout(5000) })
    return { status: res.statusCode, text: await res.body.text() }
  } catch (err) {
    return { text: '', error: err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err) }
  }
}

/** The daemon: alive, ready (libp2p up), and its own view from `/status`. */
export async function checkDaemon (mirror: string): Promise<{ checks: Check[], status?: DaemonStatus }> {
  const ready = await probe(`${mirror}/readyz`)
  if (ready.status === undefined) return { checks: [{ name: 'daemon', status: 'fail', detail: `nothing answers at ${mirror} (${ready.error ?? 'no answer'}): is \`dfclient daemon\` running, and is --mirror its --listen address?` }] }
  if (ready.status !== 200) return { checks: [{ name: 'daemon', status: 'fail', detail: `${mirror}/readyz answered ${ready.status}: the daemon is not ready (libp2p not started)` }] }
  const raw = await probe(`${mirror}/status`)
  let status: DaemonStatus | undefined
  try { status = raw.status === 200 ? daemonStatus.parse(JSON.parse(raw.text)) : undefined } catch { status = undefined }
  if (status === undefined) return { checks: [{ name: 'daemon', status: 'warn', detail: `${mirror} is ready but has no /status (an older dfclient?): supernode state unknown` }] }
  const quota = status.cache.quotaBytes === undefined ? 'no quota' : `quota ${mib(status.cache.quotaBytes)}`
  return {
    status,
    checks: [{ name: 'daemon', status: 'ok', detail: `${mirror} ready: dfclient ${status.version}, peer ${status.peerId}, cache ${mib(status.cache.usedBytes)} in ${status.cache.blobs} blob(s), ${quota}, default registry ${status.defaultRegistry}` }]
  }
}

/**
 * The supernode as this host reaches it (`--supernode`/config, else the daemon's) and as the daemon
 * sees it: a daemon that is not announced sends every pull upstream.
 */
export async function checkSupernode (urls: readonly string[] | undefined, status: DaemonStatus | undefined): Promise<Check[]> {
  const checks: Check[] = []
  const given = urls !== undefined && urls.length > 0 ? urls : status === undefined ? [] : (status.supernodes?.map(s => s.url) ?? [status.supernode.url])
  if (given.length === 0) return [{ name: 'supernode', status: 'fail', detail: 'no supernode URL: pass --supernode (or DAMSELFLY_SUPERNODE / the daemon config)' }]
  // A dns+ name stands for every address it resolves to: each is checked.
  const targets: string[] = []
  for (const text of given) {
    const spec = parseSupernodeSpec(text)
    if (typeof spec === 'string') { checks.push({ name: 'supernode', status: 'fail', detail: spec }); continue }
    if (spec.kind === 'url') { targets.push(spec.url); continue }
    try {
      const addrs = await systemResolve(spec.host, AbortSignal.timeout(DNS_TIMEOUT_MS))
      if (addrs.length === 0) throw new Error('no addresses')
      targets.push(...addrs.map(a => addressUrl(spec, a)))
    } catch (err) {
      checks.push({ name: 'supernode', status: 'fail', detail: `${text}: ${spec.host} does not resolve from this host: ${err instanceof Error ? err.message : String(err)}` })
    }
  }
  for (const url of targets) {
    const r = await probe(`${url}/readyz`)
    checks.push(r.status === 200
      ? { name: 'supernode', status: 'ok', detail: `${url} ready` }
      : { name: 'supernode', status: 'fail', detail: r.status === undefined ? `${url} unreachable from this host: ${r.error ?? ''}` : `${url}/readyz answered ${r.status}` })
  }
  if (status !== undefined) {
    checks.push(status.supernode.announced
      ? { name: 'announce', status: 'ok', detail: `the daemon is announced to ${status.supernode.url}` }
      : { name: 'announce', status: 'fail', detail: `the daemon is not announced to ${status.supernode.url}: every pull goes straight to the registry (${status.supernode.error ?? 'no answer yet'}); check --supernode and --token` })
  }
  return checks
}

/**
 * The runtime configs that should send pulls to `mirror`: the one asked for, or every runtime whose
 * config directory exists here. A runtime that was asked for and does not point at the mirror fails.
 */
export async function checkRuntimes (opts: { runtime?: Runtime | undefined, configPath?: string | undefined, containerdConfig: string, mirror: string }): Promise<Check[]> {
  const runtimes: Runtime[] = opts.runtime !== undefined ? [opts.runtime] : ['containerd', 'docker', 'podman']
  const checks: Check[] = []
  for (const rt of runtimes) {
    const dir = opts.configPath ?? DEFAULT_CONFIG_PATHS[rt]
    const check = rt === 'containerd' ? await checkContainerd(dir, opts.containerdConfig, opts.mirror) : rt === 'docker' ? await checkDocker(dir, opts.mirror) : await checkPodman(dir, opts.mirror)
    if (check === undefined) continue
    // Not asked for and not pointing at the mirror: worth knowing, not a failure of P2P.
    for (const c of check) checks.push(opts.runtime === undefined && c.status === 'fail' ? { ...c, status: 'warn' } : c)
  }
  if (checks.length === 0) checks.push({ name: 'runtime', status: 'warn', detail: 'no containerd, Docker or podman configuration found here; pass --runtime and --config-path' })
  return checks
}

async function checkContainerd (dir: string, configToml: string, mirror: string): Promise<Check[] | undefined> {
  const def = await readIfExists(join(dir, '_default', 'hosts.toml'))
  const hub = await readIfExists(join(dir, 'docker.io', 'hosts.toml'))
  const toml = await readIfExists(configToml)
  if (def === undefined && hub === undefined && toml === undefined) return undefined
  const checks: Check[] = []
  const first = (text: string | undefined): string | undefined => {
    if (text === undefined) return undefined
    try { return Object.keys(((parse(text).host ?? {}) as TomlTable))[0] } catch { return 'unparseable' }
  }
  const routed = [['_default', def], ['docker.io', hub]].filter(([, t]) => t !== undefined).map(([h, t]) => [h, first(t)] as const)
  const wrong = routed.filter(([, f]) => f !== mirror)
  checks.push(def !== undefined && wrong.length === 0
    ? { name: 'containerd', status: 'ok', detail: `${dir}: the mirror ${mirror} is the first host for every registry (_default${hub === undefined ? '' : ', docker.io'})` }
    : { name: 'containerd', status: 'fail', detail: `${dir}: ${def === undefined ? 'no _default/hosts.toml' : ''}${wrong.map(([h, f]) => ` ${h}/hosts.toml tries ${f ?? 'no host'} first`).join(',')}; run \`dfclient install --runtime containerd --mirror ${mirror}\`` })
  if (toml !== undefined) {
    const configured = containerdConfigPath(toml)
    if (configured === undefined) checks.push({ name: 'containerd', status: 'warn', detail: `${configToml} sets no registry config_path: the kubelet's (CRI) pulls ignore hosts.toml and bypass the mirror (ctr --hosts-dir still works)` })
    else if (configured.split(':').every(p => p.replace(/\/+$/, '') !== dir.replace(/\/+$/, ''))) checks.push({ name: 'containerd', status: 'warn', detail: `${configToml} has config_path = "${configured}", not ${dir}` })
  }
  return checks
}

async function checkDocker (dir: string, mirror: string): Promise<Check[] | undefined> {
  const text = await readIfExists(join(dir, 'daemon.json'))
  if (text === undefined) return undefined
  let mirrors: unknown
  try { mirrors = (JSON.parse(text) as Record<string, unknown>)['registry-mirrors'] } catch { return [{ name: 'docker', status: 'fail', detail: `${dir}/daemon.json is not valid JSON` }] }
  const list = Array.isArray(mirrors) ? mirrors.map(m => String(m).replace(/\/+$/, '')) : []
  return [list[0] === mirror
    ? { name: 'docker', status: 'ok', detail: `${dir}/daemon.json: registry-mirrors starts with ${mirror} (Docker Hub images only)` }
    : { name: 'docker', status: 'fail', detail: `${dir}/daemon.json: registry-mirrors is [${list.join(', ')}], not ${mirror} first; run \`dfclient install --runtime docker --mirror ${mirror}\`` }]
}

async function checkPodman (dir: string, mirror: string): Promise<Check[] | undefined> {
  const text = await readIfExists(join(dir, PODMAN_DROPIN))
  if (text === undefined) return (await readIfExists(join(dir, 'registries.conf'))) === undefined ? undefined : [{ name: 'podman', status: 'fail', detail: `no ${join(dir, PODMAN_DROPIN)}; run \`dfclient install --runtime podman --mirror ${mirror}\`` }]
  let location: unknown
  try {
    const regs = (parse(text).registry ?? []) as Array<{ mirror?: Array<{ location?: unknown }> }>
    location = regs[0]?.mirror?.[0]?.location
  } catch { return [{ name: 'podman', status: 'fail', detail: `${join(dir, PODMAN_DROPIN)} is not valid TOML` }] }
  const want = new URL(mirror).host
  return [location === want
    ? { name: 'podman', status: 'ok', detail: `${join(dir, PODMAN_DROPIN)}: mirror ${want}` }
    : { name: 'podman', status: 'fail', detail: `${join(dir, PODMAN_DROPIN)}: mirror ${String(location)}, not ${want}` }]
}

function mib (bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`
}
