import { parseArgs } from 'node:util'
import { formatResult } from './report.js'
import { simulate, type SimulationInit } from './simulation.js'
import { parseRate, parseSize } from './units.js'

const USAGE = `usage: npm run simulate -- --peers N --blob SIZE --peer-rate RATE --upstream-rate RATE
         [--supernodes K] [--arrivals burst|ramp] [--ramp SECONDS] [--seed-rate RATE]
         [--kill-owner-at SECONDS] [--latency MS] [--polls startable|window]
  SIZE: 1GiB, 512MiB, 100MB;  RATE: 1Gbit, 10Gbit, 125MB (bytes per second)`

/**
 * \`npm run simulate\`: a discrete-event simulation of one pull wave driving the real scheduler
 * (packages/supernode/src/scheduler); see simulation.ts for the model. Prints one report.
 */
function main (argv: string[]): number {
  let values
  try {
    values = parseArgs({
      args: argv,
      options: {
        peers: { type: 'string' },
        blob: { type: 'string' },
        'peer-rate': { type: 'string' },
        'upstream-rate': { type: 'string' },
        'seed-rate': { type: 'string' },
        supernodes: { type: 'string', default: '1' },
        arrivals: { type: 'string', default: 'burst' },
        ramp: { type: 'string', default: '10' },
        'kill-owner-at': { type: 'string' },
        latency: { type: 'string', default: '1' },
        polls: { type: 'string', default: 'startable' },
        help: { type: 'boolean' }
      }
    }).values
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`)
    return 2
  }
  if (values.help === true) { process.stdout.write(USAGE + '\n'); return 0 }
  const problems: string[] = []
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n) || n < min) problems.push(`--${name}: expected a number ≥ ${min}, got ${JSON.stringify(v)}`)
    return n
  }
  const unit = (name: string, v: string | undefined, parse: (s: string) => number | undefined): number => {
    const n = v === undefined ? undefined : parse(v)
    if (n === undefined || !(n > 0)) problems.push(`--${name}: expected a positive ${parse === parseSize ? 'size' : 'rate'}, got ${JSON.stringify(v)}`)
    return n ?? 0
  }
  const init: SimulationInit = {
    peers: Math.floor(num('peers', values.peers, 1)),
    blobBytes: unit('blob', values.blob, parseSize),
    peerRate: unit('peer-rate', values['peer-rate'], parseRate),
    upstreamRate: unit('upstream-rate', values['upstream-rate'], parseRate),
    supernodes: Math.floor(num('supernodes', values.supernodes, 1)),
    latencyMs: num('latency', values.latency, 0)
  }
  if (values['seed-rate'] !== undefined) init.seedRate = unit('seed-rate', values['seed-rate'], parseRate)
  if (values.arrivals !== 'burst' && values.arrivals !== 'ramp') problems.push(`--arrivals: burst or ramp, got ${JSON.stringify(values.arrivals)}`)
  else init.arrivals = values.arrivals
  if (init.arrivals === 'ramp') init.rampMs = num('ramp', values.ramp, 0) * 1000
  if (values.polls !== 'startable' && values.polls !== 'window') problems.push(`--polls: startable or window, got ${JSON.stringify(values.polls)}`)
  else init.polls = values.polls
  if (values['kill-owner-at'] !== undefined) init.killOwnerAtMs = num('kill-owner-at', values['kill-owner-at'], 0) * 1000
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n${USAGE}\n`)
    return 2
  }
  const setup = [
    `peers=${init.peers} blob=${values.blob} peer_rate=${values['peer-rate']} upstream_rate=${values['upstream-rate']}`,
    `supernodes=${init.supernodes} arrivals=${init.arrivals}${init.arrivals === 'ramp' ? `/${values.ramp}s` : ''}`,
    init.killOwnerAtMs === undefined ? '' : `kill_owner_at=${values['kill-owner-at']}s`
  ].filter(x => x !== '').join(' ')
  const result = simulate({ ...init, maxSimulatedMs: 3_600_000 })
  process.stdout.write(formatResult(result, setup) + '\n')
  return result.completed === result.peers ? 0 : 1
}

process.exitCode = main(process.argv.slice(2))
