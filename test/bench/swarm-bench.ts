import { copyFile, mkdir } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { basename, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import {
  BENCH_LAYER_SIZES, buildTestImage, Cleanup, createSwarmNetwork, metrics, metricSum, MiB, pushImage,
  startContainerd, startDfclient, startProcess, startRegistry, startSupernode, stopAllProcesses, writeHostsToml,
  type Containerd, type DamselflyProcess, type ManagedProcess, type NetnsNode, type Registry, type SwarmNetwork, type TestImage
} from '../harness/index.js'
import { CpuAccount, median, printTable, type CpuUse } from './measure.js'

const USAGE = `npm run bench -- swarm [options]
  --hosts N              host namespaces, each with a dfclient and a containerd (default 3)
  --host-rate R          tbf rate of every host link, both directions (default 1gbit)
  --registry-rate R      tbf rate of the registry link, both directions (default 100mbit)
  --supernode-rate R     tbf rate of the supernode link (default: --host-rate; "none" = unlimited)
  --image-sizes LIST     layer sizes in MiB (default 1,32,256 ≈ 303 MB)
  --modes LIST           direct,damselfly (default both, in that order)
  --timeout S            overall time limit in seconds; everything is torn down when it hits (default 1200)
  --log-dir DIR          copy every process log (registry, supernode, dfclients, containerd, ctr) here at the end
  --supernode-arg ARG    extra supernode argument (repeatable)
  --dfclient-arg ARG     extra dfclient daemon argument (repeatable)
Rates use tc units: 50mbit, 1gbit, 500kbit. Needs root (network namespaces).`

const MODES = ['direct', 'damselfly'] as const
type Mode = typeof MODES[number]

interface Host {
  name: string
  node: NetnsNode
  dir: string
  containerd: Containerd
  /** hosts.toml directories per mode. */
  hostsDirs: Partial<Record<Mode, string>>
  dfclient?: DamselflyProcess
}

interface PullResult {
  host: string
  seconds: number
  /** Until ctr printed `unpacking` (all content fetched); undefined if not seen. */
  fetchSeconds: number | undefined
}

interface ModeResult {
  mode: Mode
  pulls: PullResult[]
  registryBytes: number
  registryLinkTx: number
  /** Damselfly mode only. */
  seededBytes?: number
  supernodeUpstreamBytes?: number
  peerBytes?: number
  fromSupernodeBytes?: number
  fallbacks?: number
  servedBySource?: Record<string, number>
  /** CPU used while the pulls ran. */
  cpu: CpuUse
}

/** `100mbit` → bytes per second (tc units: k/m/g/t = powers of 1000; `bit` or `bps` = bytes). */
export function rateBytesPerSecond (rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)(bit|bps)$/i.exec(rate.trim())
  if (m === null) throw new Error(`bad rate "${rate}" (want e.g. 100mbit, 1gbit)`)
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't']
  const n = Number(m[1]) * mult
  return m[3]!.toLowerCase() === 'bit' ? n / 8 : n
}

function mb (bytes: number): string { return (bytes / 1e6).toFixed(1) }

/**
 * The swarm bench: N hosts behind their own rate-limited links pull the same image at the same moment,
 * first straight from the registry (no P2P), then through Damselfly (dfclient mirror per host, one
 * supernode), each with fresh containerd state, and one table compares upstream copies, seeded copies,
 * peer bytes and pull times with the physical bound S/U. With one host it also measures a warm pull.
 */
export async function runSwarmBench (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: 'string', default: '3' },
      'host-rate': { type: 'string', default: '1gbit' },
      'registry-rate': { type: 'string', default: '100mbit' },
      'supernode-rate': { type: 'string' },
      'image-sizes': { type: 'string', default: BENCH_LAYER_SIZES.map((s) => s / MiB).join(',') },
      modes: { type: 'string', default: MODES.join(',') },
      timeout: { type: 'string', default: '1200' },
      'log-dir': { type: 'string' },
      'supernode-arg': { type: 'string', multiple: true, default: [] },
      'dfclient-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) { console.log(USAGE); return }
  const hostCount = Number(values.hosts)
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > 64) throw new Error(`--hosts must be 1..64\n${USAGE}`)
  const hostRate = values['host-rate']
  const registryRate = values['registry-rate']
  const supernodeRate = values['supernode-rate'] === 'none' ? undefined : (values['supernode-rate'] ?? hostRate)
  for (const r of [hostRate, registryRate, supernodeRate]) if (r !== undefined) rateBytesPerSecond(r)
  const sizes = values['image-sizes'].split(',').map((s) => Math.round(Number(s.trim()) * MiB))
  if (sizes.length === 0 || sizes.some((s) => !Number.isFinite(s) || s <= 0)) throw new Error(`bad --image-sizes\n${USAGE}`)
  const modes = values.modes.split(',').map((s) => s.trim()) as Mode[]
  if (modes.length === 0 || modes.some((m) => !MODES.includes(m))) throw new Error(`--modes takes ${MODES.join(',')}`)
  const timeoutS = Number(values.timeout)
  if (!(timeoutS > 0)) throw new Error('--timeout must be > 0 seconds')
  if (process.getuid?.() !== 0) throw new Error('the swarm bench needs root (network namespaces)')

  const deadline = Date.now() + timeoutS * 1000
  const cleanup = new Cleanup()
  const logFiles: string[] = []
  const hosts: Host[] = []
  let torn: Promise<void> | undefined
  const teardown = async (): Promise<void> => {
    torn ??= (async () => {
      // dfclients first (they deregister from the supernode), then every other process by PID, then the
      // LIFO cleanup stack: temp dirs, and last the namespaces and the guard route.
      await Promise.all(hosts.map(async (h) => await h.dfclient?.stop()))
      await stopAllProcesses(3000)
      if (values['log-dir'] !== undefined) await copyLogs(values['log-dir'], logFiles)
      await cleanup.run()
    })()
    await torn
  }
  // Ctrl-C / SIGTERM / the overall timeout: tear everything down, then exit. A second signal exits at once
  // (the netns module's exit hook still removes the namespaces and the guard route synchronously).
  let aborting: string | undefined
  const abort = (why: string, code: number): void => {
    if (aborting !== undefined) process.exit(code)
    aborting = why
    console.error(`\nswarm bench: ${why}; tearing down`)
    void teardown().catch((err: unknown) => { console.error(err) }).finally(() => process.exit(code))
  }
  const onSigint = (): void => { abort('interrupted', 130) }
  const onSigterm = (): void => { abort('terminated', 143) }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)
  const timer = setTimeout(() => { abort(`overall timeout (${timeoutS} s) reached`, 124) }, timeoutS * 1000)
  const remainingMs = (): number => Math.max(1000, deadline - Date.now())

  try {
    const [l1, l5] = loadavg()
    console.log(`load average ${l1!.toFixed(2)} (1 min), ${l5!.toFixed(2)} (5 min) on this machine before the run`)
    const image = await buildTestImage({ sizes })
    const imageBytes = image.manifest.size + image.config.size + image.layers.reduce((n, l) => n + l.size, 0)

    // Network: registry, supernode, then the hosts. Created first, so torn down last.
    const net = await createSwarmNetwork({
      nodes: [
        { name: 'reg', rate: registryRate },
        { name: 'sn', rate: supernodeRate },
        ...Array.from({ length: hostCount }, (_, i) => ({ name: `h${i + 1}`, rate: hostRate }))
      ]
    })
    cleanup.defer('network', async () => { await net.teardown() })
    console.log(`network ${net.prefix}: ${net.subnet} (guard route in the root namespace), switch ${net.switchNetns}; ` +
      `if this process is SIGKILLed: ip netns del <${net.prefix}-*> and ip route del unreachable ${net.subnet}`)

    const registry = await startSwarmRegistry(cleanup, net, image, logFiles)
    const regNode = net.node('reg')
    const ref = `${registry.host}/bench/swarm:v1`
    console.log(`image ${ref} ${image.manifest.digest}: ${mb(imageBytes)} MB (layers ${image.layers.map((l) => (l.size / MiB).toFixed(0)).join('+')} MiB)`)
    console.log(`${hostCount} host(s) at ${hostRate}, registry at ${registryRate}, supernode at ${supernodeRate ?? 'unlimited'}`)

    for (let i = 1; i <= hostCount; i++) {
      const node = net.node(`h${i}`)
      const dir = await cleanup.tempDir(`sw-h${i}-`)
      const containerd = await startContainerd({ dir, netns: node.netns, namespace: 'swarm' })
      cleanup.defer(`containerd h${i}`, async () => { await containerd.stop() })
      logFiles.push(containerd.process.logFile)
      const hostsDirs: Partial<Record<Mode, string>> = {}
      // No mirror: writeHostsToml also lists the server as a host, which ctr 1.6 needs to accept the file.
      hostsDirs.direct = await writeHostsToml(join(dir, 'certs-direct'), registry.host, { server: registry.url })
      hosts.push({ name: `h${i}`, node, dir, containerd, hostsDirs })
      // Every host reaches the registry over the bridge (and only that way).
      const probe = await net.exec(node, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${registry.url}/v2/`])
      if (probe.stdout.trim() !== '200') throw new Error(`h${i} cannot reach ${registry.url}: ${probe.stdout} ${probe.stderr}`)
    }

    const results: ModeResult[] = []
    let supernode: DamselflyProcess | undefined
    let warm: PullResult | undefined
    for (const mode of modes) {
      for (const h of hosts) await h.containerd.reset()
      if (mode === 'damselfly') {
        supernode = await startSwarmSupernode(cleanup, net, registry, values['supernode-arg'], logFiles)
        for (const h of hosts) {
          h.dfclient = await startSwarmDfclient(cleanup, h, supernode, registry, values['dfclient-arg'], logFiles)
          h.hostsDirs.damselfly = await writeHostsToml(join(h.dir, 'certs-damselfly'), registry.host, { server: registry.url, mirrors: [h.dfclient.httpUrl] })
        }
      }
      console.log(`\n[${mode}] ${hostCount} concurrent pull(s)…`)
      const mark = registry.mark()
      const tx0 = (await net.linkBytes(regNode)).tx
      const cpu = new CpuAccount({
        dfclients: hosts.flatMap((h) => h.dfclient === undefined ? [] : [h.dfclient.process.pid]),
        supernode: supernode === undefined || mode !== 'damselfly' ? [] : [supernode.process.pid],
        containerd: hosts.map((h) => h.containerd.process.pid),
        registry: [registry.process.pid]
      })
      await cpu.start()
      const pulls = await Promise.all(hosts.map(async (h) => await timedPull(h, mode, ref, remainingMs(), logFiles)))
      const cpuUse = await cpu.stop()
      for (const h of hosts) await verifyImage(h, ref, image)
      await new Promise((resolve) => setTimeout(resolve, 500)) // access-log lines are written after the response
      const result: ModeResult = {
        mode,
        pulls,
        registryBytes: registry.egressBytes(mark),
        registryLinkTx: (await net.linkBytes(regNode)).tx - tx0,
        cpu: cpuUse
      }
      if (mode === 'damselfly') Object.assign(result, await damselflyCounters(net, supernode!, hosts))
      results.push(result)
      console.log(`[${mode}] done: ${pulls.map((p) => `${p.host} ${p.seconds.toFixed(1)} s`).join(', ')}`)

      if (mode === 'damselfly' && hostCount === 1) {
        // Warm: the image leaves containerd, the dfclient keeps its piece cache.
        const h = hosts[0]!
        await h.containerd.reset()
        const before = await metrics(h.dfclient!.httpUrl, { netns: h.node.netns })
        const wmark = registry.mark()
        warm = await timedPull(h, 'damselfly', ref, remainingMs(), logFiles)
        await verifyImage(h, ref, image)
        const after = await metrics(h.dfclient!.httpUrl, { netns: h.node.netns })
        await new Promise((resolve) => setTimeout(resolve, 500))
        const served = (src: string): number =>
          metricSum(after, 'damselfly_blob_bytes_served_total', { source: src }) - metricSum(before, 'damselfly_blob_bytes_served_total', { source: src })
        console.log(`[warm] ${warm.seconds.toFixed(2)} s; registry sent ${mb(registry.egressBytes(wmark))} MB; ` +
          `dfclient served local ${mb(served('local'))} MB, p2p ${mb(served('p2p'))} MB, upstream ${mb(served('upstream'))} MB`)
      }
    }

    printSwarmTable(results, imageBytes, hostRate, registryRate, hostCount)
    if (hostCount === 1) printOneNodeTable(results, warm, imageBytes, hostRate, registryRate)
    console.log(`\nAll ${hostCount * results.length + (warm !== undefined ? 1 : 0)} pulls verified: ctr exit 0 (containerd checks every digest), ` +
      `image ${image.manifest.digest} listed, manifest/config/${image.layers.length} layer digests in \`ctr content ls\`.`)
  } catch (err) {
    // After an abort, the failure seen here is a consequence (a killed pull): report the cause.
    throw aborting !== undefined ? new Error(`swarm bench aborted: ${aborting}`, { cause: err }) : err
  } finally {
    clearTimeout(timer)
    // Always wait for the (single, shared) teardown before returning: the caller exits the process next.
    await teardown()
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigterm)
  }
}

/**
 * Pushes the image to a loopback registry in the root namespace (this process cannot reach namespace
 * addresses), stops it, then serves the same storage directory from the registry namespace on :5000.
 */
async function startSwarmRegistry (cleanup: Cleanup, net: SwarmNetwork, image: TestImage, logFiles: string[]): Promise<Registry> {
  const dir = await cleanup.tempDir('sw-registry-')
  const loopback = await startRegistry({ dir })
  try {
    await pushImage({ url: loopback.url }, 'bench/swarm', 'v1', image)
  } finally {
    await loopback.stop()
  }
  const node = net.node('reg')
  const registry = await startRegistry({ dir, netns: node.netns, listenHost: node.addr, port: 5000 })
  cleanup.defer('registry', async () => { await registry.stop() })
  logFiles.push(registry.process.logFile)
  return registry
}

async function startSwarmSupernode (cleanup: Cleanup, net: SwarmNetwork, registry: Registry, extraArgs: string[], logFiles: string[]): Promise<DamselflyProcess> {
  const node = net.node('sn')
  const sn = await startSupernode({
    dir: await cleanup.tempDir('sw-sn-'),
    netns: node.netns,
    listenHost: node.addr,
    p2pHost: node.addr,
    registries: [{ host: registry.host, url: registry.url }],
    extraArgs
  })
  cleanup.defer('supernode', async () => { await sn.stop() })
  logFiles.push(sn.process.logFile)
  return sn
}

async function startSwarmDfclient (cleanup: Cleanup, h: Host, sn: DamselflyProcess, registry: Registry, extraArgs: string[], logFiles: string[]): Promise<DamselflyProcess> {
  const df = await startDfclient({
    dir: await cleanup.tempDir(`sw-df-${h.name}-`),
    name: `dfclient-${h.name}`,
    netns: h.node.netns,
    // The mirror stays on the host namespace's own loopback (ctr runs there too); libp2p on the host address.
    listenHost: '127.0.0.1',
    p2pHost: h.node.addr,
    supernode: sn.httpUrl,
    registries: [{ host: registry.host, url: registry.url }],
    defaultRegistry: registry.host,
    extraArgs
  })
  cleanup.defer(`dfclient ${h.name}`, async () => { await df.stop() })
  logFiles.push(df.process.logFile)
  return df
}

/** `ctr images pull` inside the host's namespace, timed from spawn to exit (and to the `unpacking` line). */
async function timedPull (h: Host, mode: Mode, ref: string, timeoutMs: number, logFiles: string[]): Promise<PullResult> {
  const hostsDir = h.hostsDirs[mode]!
  const started = performance.now()
  let fetched: number | undefined
  const proc: ManagedProcess = startProcess({
    name: `ctr-pull-${mode}-${h.name}`,
    command: 'ctr',
    args: ['-a', h.containerd.socket, '-n', h.containerd.namespace, 'images', 'pull', '--hosts-dir', hostsDir, ref],
    logDir: h.dir,
    netns: h.node.netns,
    ringSize: 200
  })
  logFiles.push(proc.logFile)
  proc.onLine((l) => { if (fetched === undefined && l.line.includes('unpacking ')) fetched = performance.now() })
  const timer = setTimeout(() => { void proc.stop(2000) }, timeoutMs)
  const status = await proc.exited
  clearTimeout(timer)
  const seconds = (performance.now() - started) / 1000
  if (status.code !== 0) {
    throw new Error(`${mode} pull on ${h.name} failed after ${seconds.toFixed(1)} s (code ${status.code}, signal ${status.signal})\n` +
      proc.output().split('\n').slice(-15).join('\n') + `\n(full log: ${proc.logFile})`)
  }
  return { host: h.name, seconds, fetchSeconds: fetched === undefined ? undefined : (fetched - started) / 1000 }
}

/** The image is listed with the expected manifest digest and every blob is in the content store. */
async function verifyImage (h: Host, ref: string, image: TestImage): Promise<void> {
  const ls = await h.containerd.ctr(['images', 'ls'])
  const row = ls.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === ref)
  if (row === undefined || !row.includes(image.manifest.digest)) {
    throw new Error(`${h.name}: ${ref} not listed with ${image.manifest.digest}:\n${ls.stdout}${ls.stderr}`)
  }
  const have = new Set(await h.containerd.contentDigests())
  const missing = [image.manifest, image.config, ...image.layers].map((b) => b.digest).filter((d) => !have.has(d))
  if (missing.length > 0) throw new Error(`${h.name}: content store lacks ${missing.join(', ')}`)
}

async function damselflyCounters (net: SwarmNetwork, sn: DamselflyProcess, hosts: Host[]): Promise<Partial<ModeResult>> {
  const snm = await metrics(sn.httpUrl, { netns: net.node('sn').netns })
  let peerBytes = 0; let fromSupernodeBytes = 0; let fallbacks = 0
  const servedBySource: Record<string, number> = {}
  for (const h of hosts) {
    const m = await metrics(h.dfclient!.httpUrl, { netns: h.node.netns })
    peerBytes += metricSum(m, 'damselfly_piece_bytes_received_total', { from: 'peer' })
    fromSupernodeBytes += metricSum(m, 'damselfly_piece_bytes_received_total', { from: 'supernode' })
    fallbacks += metricSum(m, 'damselfly_upstream_fallbacks_total')
    for (const src of ['local', 'p2p', 'upstream']) {
      servedBySource[src] = (servedBySource[src] ?? 0) + metricSum(m, 'damselfly_blob_bytes_served_total', { source: src })
    }
  }
  return {
    seededBytes: metricSum(snm, 'damselfly_piece_bytes_uploaded_total'),
    supernodeUpstreamBytes: metricSum(snm, 'damselfly_upstream_bytes_total'),
    peerBytes,
    fromSupernodeBytes,
    fallbacks,
    servedBySource
  }
}

function printSwarmTable (results: ModeResult[], imageBytes: number, hostRate: string, registryRate: string, hostCount: number): void {
  const su = imageBytes / rateBytesPerSecond(registryRate)
  const sh = imageBytes / rateBytesPerSecond(hostRate)
  const copies = (b: number | undefined): string => b === undefined ? '-' : (b / imageBytes).toFixed(2)
  console.log(`\nswarm: ${hostCount} host(s) at ${hostRate}, registry at ${registryRate}, image S = ${mb(imageBytes)} MB, ` +
    `S/U = ${su.toFixed(1)} s (S/host-rate = ${sh.toFixed(1)} s)`)
  printTable(
    ['mode', 'upstream copies', 'seeded copies', 'from peers (copies)', 'p50 s', 'max s', 'max fetch s', 'S/U s', 'max ÷ S/U'],
    results.map((r) => {
      const times = r.pulls.map((p) => p.seconds)
      const fetches = r.pulls.map((p) => p.fetchSeconds).filter((x): x is number => x !== undefined)
      const max = Math.max(...times)
      return [
        r.mode,
        copies(r.registryBytes),
        copies(r.seededBytes),
        r.peerBytes === undefined ? '-' : `${mb(r.peerBytes)} MB (${copies(r.peerBytes)})`,
        median(times).toFixed(1),
        max.toFixed(1),
        fetches.length === times.length ? Math.max(...fetches).toFixed(1) : '?',
        su.toFixed(1),
        (max / su).toFixed(2)
      ]
    })
  )
  for (const r of results) {
    const parts = [`registry link sent ${copies(r.registryLinkTx)} copies (cross-check of the access log)`]
    if (r.mode === 'damselfly') {
      parts.push(`supernode fetched upstream ${copies(r.supernodeUpstreamBytes)}`,
        `dfclients received from supernode ${copies(r.fromSupernodeBytes)}`,
        `served local/p2p/upstream ${copies(r.servedBySource?.local)}/${copies(r.servedBySource?.p2p)}/${copies(r.servedBySource?.upstream)}`,
        `upstream fallbacks ${r.fallbacks ?? 0}`)
    }
    console.log(`  ${r.mode}: ${parts.join('; ')}`)
  }
  console.log('  copies = bytes ÷ image size; pull s = ctr spawn → exit (fetch + unpack); fetch s = until ctr starts unpacking.')
  printCpuTable(results, imageBytes, hostCount)
}

/**
 * Where the machine's CPU went while the pulls ran. On a small machine that hosts every node, a busy
 * share near 100% means the pull times measure this machine's cores, not the network or the schedule:
 * `busy ÷ cores` is then the least wall time the same work could take here.
 */
function printCpuTable (results: ModeResult[], imageBytes: number, hostCount: number): void {
  const cores = availableParallelism()
  const names = [...new Set(results.flatMap((r) => Object.keys(r.cpu.groups)))]
  console.log(`
CPU while the pulls ran (${cores} cores shared by every namespace; core-seconds; other = kernel network work and anything else running on the machine; per GB = per GB pulled by all hosts):`)
  printTable(
    ['mode', 'machine busy', 'busy ÷ cores s', ...names, 'per GB pulled'],
    results.map((r) => [
      r.mode,
      `${(100 * r.cpu.busy / r.cpu.available).toFixed(0)}%`,
      (r.cpu.busy / cores).toFixed(1),
      ...names.map((n) => (r.cpu.groups[n] ?? 0).toFixed(1)),
      (r.cpu.busy / (hostCount * imageBytes / 1e9)).toFixed(1)
    ])
  )
}

function printOneNodeTable (results: ModeResult[], warm: PullResult | undefined, imageBytes: number, hostRate: string, registryRate: string): void {
  const direct = results.find((r) => r.mode === 'direct')?.pulls[0]
  const cold = results.find((r) => r.mode === 'damselfly')?.pulls[0]
  console.log(`\none node: host link ${hostRate}, registry link ${registryRate}`)
  const rows: string[][] = []
  const row = (label: string, p: PullResult | undefined): void => {
    if (p !== undefined) rows.push([label, p.seconds.toFixed(2), p.fetchSeconds?.toFixed(2) ?? '?', (imageBytes / p.seconds / 1e6).toFixed(0)])
  }
  row('direct (registry over the same link)', direct)
  row('cold through Damselfly', cold)
  row('warm through Damselfly (dfclient cache kept)', warm)
  printTable(['pull', 's', 'fetch s', 'MB/s'], rows)
  if (direct !== undefined && cold !== undefined) console.log(`cold ÷ direct = ${(cold.seconds / direct.seconds).toFixed(2)}`)
  if (direct !== undefined && warm !== undefined) console.log(`direct ÷ warm = ${(direct.seconds / warm.seconds).toFixed(2)}`)
}

async function copyLogs (dir: string, files: string[]): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const f of files) {
    const parent = basename(join(f, '..'))
    await copyFile(f, join(dir, `${parent}-${basename(f)}`)).catch(() => { /* process never wrote a log */ })
  }
  console.log(`logs copied to ${dir}`)
}
