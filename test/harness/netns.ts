import { execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { runChecked, runCommand, type RunOptions, type RunResult } from './processes.js'

/**
 * Many hosts on one machine (TESTBENCH.md "network namespaces"): a switch namespace holding a bridge,
 * and one namespace per node, each joined to the bridge by a veth pair whose two ends can be limited
 * with `tbf` (no netem on this kernel, so bandwidth only, no latency).
 *
 * Safety: the root namespace has a default route out of the machine, so before anything else an
 * `unreachable` route for the whole /24 goes into the root namespace; nothing in the root namespace can
 * then send a packet to a namespace address by mistake. Every process must be started inside a
 * namespace (`netns` option of the harness helpers, or `ip netns exec`). Teardown removes the
 * namespaces and then the guard route; it runs from `teardown()`, and synchronously on process exit
 * for whatever is still left (e.g. after an uncaught error or a second Ctrl-C).
 */

export interface NetnsNodeSpec {
  /** Short name, unique in the network: `[a-z0-9]{1,12}` (the namespace is `<prefix>-<name>`). */
  name: string
  /** tbf rate on both ends of the node's veth (`100mbit`, `1gbit`); undefined = unlimited. */
  rate?: string
}

export interface NetnsNode {
  name: string
  /** Network namespace name, for `ip netns exec` and the harness's `netns` options. */
  netns: string
  /** IPv4 address of the node's `eth0`. */
  addr: string
  rate: string | undefined
}

export interface CreateNetworkOptions {
  nodes: NetnsNodeSpec[]
  /** Namespace name prefix; default `dfsw-<6 random hex>` (unique per run: other workloads may share the machine). */
  prefix?: string
  /** Third octet of `10.211.X.0/24`; default a random one that no route or address on the machine uses yet. */
  subnetOctet?: number
  /** tbf `burst`; default `256k` (TESTBENCH.md: 100mbit → 95.7 Mbit/s, 1gbit → 957 Mbit/s). */
  burst?: string
  /** tbf `latency` (queue bound); default `50ms`. */
  latency?: string
}

export interface SwarmNetwork {
  prefix: string
  /** `10.211.X.0/24` */
  subnet: string
  switchNetns: string
  nodes: NetnsNode[]
  /** The node with that name; throws if there is none. */
  node: (name: string) => NetnsNode
  /** Runs a command inside a node's namespace (never throws; check `code`). */
  exec: (node: NetnsNode | string, command: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>
  /** Bytes counted on the node's `eth0` (from `/proc/net/dev` inside its namespace). */
  linkBytes: (node: NetnsNode | string) => Promise<{ rx: number, tx: number }>
  /** Removes the namespaces (and with them the veths and qdiscs), then the guard route. Idempotent. */
  teardown: () => Promise<void>
}

/** Namespaces and guard routes created by this module and not removed yet (for the exit hook). */
const liveNamespaces = new Set<string>()
const liveGuards = new Set<string>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const ns of liveNamespaces) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* already gone */ }
    }
    liveNamespaces.clear()
    for (const subnet of liveGuards) {
      try { execFileSync('ip', ['route', 'del', 'unreachable', subnet], { stdio: 'ignore' }) } catch { /* already gone */ }
    }
    liveGuards.clear()
  })
}

const NAME = /^[a-z0-9]{1,12}$/

/** Root namespace addresses and routes (all tables) as text, to avoid subnets already in use. */
async function usedAddressText (): Promise<string> {
  const routes = await runChecked('ip', ['-4', 'route', 'show', 'table', 'all'])
  const addrs = await runChecked('ip', ['-4', 'addr', 'show'])
  return routes.stdout + '\n' + addrs.stdout
}

async function pickSubnetOctet (wanted: number | undefined): Promise<number> {
  const used = await usedAddressText()
  const free = (x: number): boolean => !used.includes(`10.211.${x}.`)
  if (wanted !== undefined) {
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > 254) throw new Error(`subnet octet ${wanted} is not in 1..254`)
    if (!free(wanted)) throw new Error(`10.211.${wanted}.0/24 is already in use on this machine`)
    return wanted
  }
  for (let i = 0; i < 50; i++) {
    const x = randomInt(1, 255)
    if (free(x)) return x
  }
  throw new Error('no free 10.211.X.0/24 found')
}

/**
 * Builds the network: guard route, switch namespace with bridge `br0`, one namespace per node with
 * `eth0` = `10.211.X.(2+i)/24`, lo up, tbf on both veth ends when the node has a rate.
 * On any failure the part already built is torn down before the error is rethrown.
 */
export async function createSwarmNetwork (opts: CreateNetworkOptions): Promise<SwarmNetwork> {
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root')
  if (opts.nodes.length === 0 || opts.nodes.length > 250) throw new Error('between 1 and 250 nodes')
  const names = new Set<string>()
  for (const n of opts.nodes) {
    if (!NAME.test(n.name) || n.name === 'sw') throw new Error(`bad node name "${n.name}" (want [a-z0-9]{1,12}, not "sw")`)
    if (names.has(n.name)) throw new Error(`duplicate node name "${n.name}"`)
    names.add(n.name)
  }
  installExitHook()
  const prefix = opts.prefix ?? `dfsw-${randomBytes(3).toString('hex')}`
  const burst = opts.burst ?? '256k'
  const latency = opts.latency ?? '50ms'
  const octet = await pickSubnetOctet(opts.subnetOctet)
  const subnet = `10.211.${octet}.0/24`
  const switchNetns = `${prefix}-sw`
  const created: string[] = []
  let guarded = false
  const nodes: NetnsNode[] = []

  const teardown = async (): Promise<void> => {
    const errors: string[] = []
    // Node namespaces first (their veth ends vanish with them), the switch last, then the guard route.
    for (const ns of [...created].reverse()) {
      const r = await runCommand('ip', ['netns', 'del', ns])
      if (r.code !== 0 && !/No such file/.test(r.stderr)) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`)
      liveNamespaces.delete(ns)
    }
    created.length = 0
    if (guarded) {
      const r = await runCommand('ip', ['route', 'del', 'unreachable', subnet])
      if (r.code !== 0 && !/No such process/.test(r.stderr)) errors.push(`ip route del unreachable ${subnet}: ${r.stderr.trim()}`)
      liveGuards.delete(subnet)
      guarded = false
    }
    if (errors.length > 0) throw new Error(`network teardown: ${errors.join('; ')}`)
  }

  const ip = async (...args: string[]): Promise<void> => { await runChecked('ip', args) }
  const tbf = async (netns: string, dev: string, rate: string): Promise<void> => {
    await runChecked('tc', ['-n', netns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency])
  }
  const addNetns = async (ns: string): Promise<void> => {
    await ip('netns', 'add', ns)
    created.push(ns)
    liveNamespaces.add(ns)
  }

  try {
    // 1. Guard first: from here on nothing in the root namespace can reach the subnet (or leave the machine for it).
    await ip('route', 'add', 'unreachable', subnet)
    guarded = true
    liveGuards.add(subnet)
    // 2. The switch.
    await addNetns(switchNetns)
    await ip('-n', switchNetns, 'link', 'set', 'lo', 'up')
    await ip('-n', switchNetns, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', switchNetns, 'link', 'set', 'br0', 'up')
    // 3. The nodes: veth created inside the switch namespace with its peer placed straight into the node's
    //    namespace, so no interface ever appears in the root namespace.
    for (const [i, spec] of opts.nodes.entries()) {
      const netns = `${prefix}-${spec.name}`
      const addr = `10.211.${octet}.${2 + i}`
      const port = `p${i}`
      await addNetns(netns)
      await ip('-n', switchNetns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns)
      await ip('-n', switchNetns, 'link', 'set', port, 'master', 'br0')
      await ip('-n', switchNetns, 'link', 'set', port, 'up')
      await ip('-n', netns, 'link', 'set', 'lo', 'up')
      await ip('-n', netns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
      await ip('-n', netns, 'link', 'set', 'eth0', 'up')
      if (spec.rate !== undefined) {
        await tbf(netns, 'eth0', spec.rate) // node → switch
        await tbf(switchNetns, port, spec.rate) // switch → node
      }
      nodes.push({ name: spec.name, netns, addr, rate: spec.rate })
    }
  } catch (err) {
    await teardown().catch(() => { /* the exit hook retries */ })
    throw err
  }

  const node = (n: NetnsNode | string): NetnsNode => {
    if (typeof n !== 'string') return n
    const found = nodes.find((x) => x.name === n)
    if (found === undefined) throw new Error(`no node "${n}" in ${prefix}`)
    return found
  }
  return {
    prefix,
    subnet,
    switchNetns,
    nodes,
    node,
    exec: async (n, command, args, o = {}) => await runCommand(command, args, { ...o, netns: node(n).netns }),
    linkBytes: async (n) => {
      const r = await runChecked('cat', ['/proc/net/dev'], { netns: node(n).netns })
      const line = r.stdout.split('\n').find((l) => l.trim().startsWith('eth0:'))
      if (line === undefined) throw new Error(`no eth0 in ${node(n).netns}`)
      const f = line.trim().slice('eth0:'.length).trim().split(/\s+/).map(Number)
      return { rx: f[0] ?? 0, tx: f[8] ?? 0 }
    },
    teardown
  }
}
