#!/usr/bin/env node
/**
 * `npm run bench -- <name> [options]`: benchmarks that print side-by-side ratios. They measure;
 * they never assert timings (tests assert bytes).
 */
import { runLoadBench } from './load-bench.js'
import { runPullBench } from './pull-bench.js'
import { runSwarmBench } from './swarm-bench.js'

const BENCHES: Record<string, { describe: string, run: (argv: string[]) => Promise<void> }> = {
  pull: { describe: 'one 256 MiB layer: direct vs cold, peer and warm through Damselfly, per encrypter', run: runPullBench },
  load: { describe: 'one dfclient under 1,000 concurrent blob requests (hits, misses, ranges): failures, p99 latency, peak RSS', run: runLoadBench },
  swarm: { describe: 'N hosts in network namespaces pull one image at once: direct vs Damselfly, upstream copies vs S/U', run: runSwarmBench }
}

const [name, ...rest] = process.argv.slice(2)
const bench = name === undefined ? undefined : BENCHES[name]
if (bench === undefined) {
  console.error(`usage: npm run bench -- <name> [options]\n${Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(8)} ${b.describe}`).join('\n')}`)
  process.exit(name === undefined || name === '--help' ? 0 : 2)
}
bench.run(rest).then(() => process.exit(0), (err: unknown) => {
  console.error(err)
  process.exit(1)
})
