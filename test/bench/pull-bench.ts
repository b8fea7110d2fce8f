import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_LAYER_SIZES, buildTestImage, Cleanup, MiB, pushImage, repoRoot, startDfclient, startRegistry, startSupernode, stopAllProcesses, type DamselflyProcess } from '../harness/index.js'
import { median, peakRssMiB, printTable, timedGet, type TimedGet } from './measure.js'

const RSS_GOAL_MIB = 200

interface Row { label: string, runs: TimedGet[], egress: number, source: string }

/**
 * The 256 MiB layer, pulled (a) straight from the registry, (b) cold through Damselfly (the
 * supernode fetches it upstream once and seeds it to dfclient A while it arrives), (c) through a
 * second dfclient B whose pieces come from A and the seed, and (d) warm from A's cache — once per
 * libp2p encrypter, each on a fresh stack, so the default encrypter is chosen by measurement.
 */
export async function runPullBench (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { runs: { type: 'string', default: '3' }, encrypters: { type: 'string', default: 'tls,noise' } } })
  const runs = Math.max(1, Number(values.runs))
  const encrypters = values.encrypters.split(',').map(s => s.trim()).filter(s => s !== '')
  const cleanup = new Cleanup()
  try {
    const image = await buildTestImage({ sizes: BENCH_LAYER_SIZES })
    const layer = image.layers.find(l => l.size > 200 * MiB)
    if (layer === undefined) throw new Error('bench image has no 256 MiB layer')
    const registry = await startRegistry({ dir: await cleanup.tempDir('bench-registry-') })
    cleanup.defer('registry', () => registry.stop())
    await pushImage({ url: registry.url }, 'bench/pull', 'v1', image)
    const blobPath = (base: string): string => `${base}/v2/bench/pull/blobs/${layer.digest}`
    const registries = [{ host: registry.host, url: registry.url }]
    console.log(`layer ${layer.digest} (${(layer.size / MiB).toFixed(1)} MiB); ${runs} run(s) each; loopback`)

    const rows: Row[] = []
    const direct: TimedGet[] = []
    let mark = registry.mark()
    for (let i = 0; i < runs; i++) direct.push(check(await timedGet(blobPath(registry.url)), layer.digest))
    // Egress is per pull, like the other rows: every run fetched the layer once.
    rows.push({ label: 'direct from registry', runs: direct, egress: await blobEgress(registry, mark, layer.digest) / runs, source: '-' })

    const rss: string[] = []
    for (const encrypter of encrypters) {
      const cold: TimedGet[] = []; const peer: TimedGet[] = []; const warm: TimedGet[] = []
      let coldEgress = 0; let peerEgress = 0; let peakA = 0
      for (let i = 0; i < runs; i++) {
        // A fresh stack per run: "cold" must mean nothing cached anywhere.
        const stack = await startStack(cleanup, registries, encrypter)
        mark = registry.mark()
        cold.push(check(await timedGet(blobPath(stack.a.httpUrl)), layer.digest))
        coldEgress += await blobEgress(registry, mark, layer.digest)
        mark = registry.mark()
        peer.push(check(await timedGet(blobPath(stack.b.httpUrl)), layer.digest))
        peerEgress += await blobEgress(registry, mark, layer.digest)
        warm.push(check(await timedGet(blobPath(stack.a.httpUrl)), layer.digest))
        peakA = Math.max(peakA, await peakRssMiB(stack.a.process.pid))
        await stack.stop()
      }
      rows.push({ label: `cold via dfclient A [${encrypter}]`, runs: cold, egress: coldEgress / runs, source: sources(cold) })
      rows.push({ label: `peer via dfclient B [${encrypter}]`, runs: peer, egress: peerEgress / runs, source: sources(peer) })
      rows.push({ label: `warm via dfclient A [${encrypter}]`, runs: warm, egress: 0, source: sources(warm) })
      rss.push(`${encrypter}: ${peakA.toFixed(0)} MiB`)
    }

    const directTime = median(direct.map(r => r.seconds))
    console.log('')
    printTable(['path', 'median s', 'MB/s', '× direct time', 'registry egress ÷ size', 'X-Damselfly-Source'], rows.map(r => {
      const t = median(r.runs.map(x => x.seconds))
      return [r.label, t.toFixed(2), (layer.size / t / 1e6).toFixed(0), (t / directTime).toFixed(2), (r.egress / layer.size).toFixed(2), r.source]
    }))
    console.log('')
    console.log(`dfclient A peak RSS (VmHWM, cold + warm of a ${(layer.size / MiB).toFixed(0)} MiB layer): ${rss.join(', ')} — goal ≤ ${RSS_GOAL_MIB} MiB`)
    console.log('Loopback note: the registry serves plain HTTP at memory speed, while every P2P byte crosses an encrypted')
    console.log('libp2p connection (LIBP2P.md: noise ≈190 MB/s, TLS ≈320 MB/s per connection on this CPU), so loopback')
    console.log('cold ratios show protocol overhead, not real-link behaviour; the swarm bench measures real links.')
  } finally {
    await stopAllProcesses()
    await cleanup.run()
  }
}

function check (r: TimedGet, digest: string): TimedGet {
  if (r.status !== 200 || r.digest !== digest) throw new Error(`pull returned status ${r.status}, digest ${r.digest}, expected ${digest}`)
  return r
}

function sources (runs: TimedGet[]): string {
  return [...new Set(runs.map(r => r.source ?? 'none'))].join(',')
}

async function blobEgress (registry: Awaited<ReturnType<typeof startRegistry>>, mark: number, digest: string): Promise<number> {
  await new Promise(resolve => setTimeout(resolve, 200))
  return registry.blobGets(mark).get(digest)?.bytes ?? 0
}

/**
 * The environment the binaries get: this process's, minus any `NODE_OPTIONS` (an operator's unit file
 * runs `npx dfclient daemon …` with none, and a flag inherited from whoever started the bench would make
 * the measured process differ from the one operators run).
 */
const OPERATOR_ENV = { NODE_OPTIONS: '' }

/**
 * Checks that a started binary runs the way operators run it: `node <bin script> …` with no Node flags
 * before the script (`npx dfclient` and `npx supernode` execute the workspace `bin` entry, whose
 * shebang is a plain `#!/usr/bin/env node`). Returns the command line for the report.
 */
async function operatorCommandLine (p: DamselflyProcess, pkg: 'dfclient' | 'supernode'): Promise<string> {
  const { bin } = JSON.parse(await readFile(join(repoRoot(), 'packages', pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  const script = join('packages', pkg, bin[pkg] ?? '')
  const argv = (await readFile(`/proc/${p.process.pid}/cmdline`, 'utf8')).split('\0').filter(a => a !== '')
  if (argv[1] !== join(repoRoot(), script)) {
    throw new Error(`${p.process.name} was started as \`${argv.join(' ')}\`, not as \`node ${script} …\` (no Node flags) like \`npx\` starts it`)
  }
  return ['node', relative(repoRoot(), argv[1]), ...argv.slice(2)].join(' ')
}

let shownCommandLine = false

async function startStack (cleanup: Cleanup, registries: Array<{ host: string, url: string }>, encrypter: string): Promise<{ a: DamselflyProcess, b: DamselflyProcess, stop: () => Promise<void> }> {
  // Default settings except the encrypter under test (the one knob this bench compares).
  const extraArgs = ['--p2p-encrypters', encrypter]
  const supernode = await startSupernode({ dir: await cleanup.tempDir('bench-sn-'), registries, extraArgs, env: OPERATOR_ENV })
  const a = await startDfclient({ dir: await cleanup.tempDir('bench-dfa-'), supernode: supernode.httpUrl, registries, name: 'dfclient-a', extraArgs, env: OPERATOR_ENV })
  const b = await startDfclient({ dir: await cleanup.tempDir('bench-dfb-'), supernode: supernode.httpUrl, registries, name: 'dfclient-b', extraArgs, env: OPERATOR_ENV })
  await operatorCommandLine(supernode, 'supernode')
  const cmd = await operatorCommandLine(a, 'dfclient')
  await operatorCommandLine(b, 'dfclient')
  if (!shownCommandLine) {
    console.log(`dfclients run as operators run them: ${cmd}`)
    shownCommandLine = true
  }
  return { a, b, stop: async () => { await Promise.all([a.stop(), b.stop()]); await supernode.stop() } }
}
