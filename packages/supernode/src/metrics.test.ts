import { describe, expect, it } from 'vitest'
import { counterValue, countReportedTransfers, createMetrics } from './metrics.js'

describe('supernode metrics', () => {
  it('counts reported piece bytes by origin: another peer or the seed, never a peer\'s own copy or a failure', async () => {
    const m = createMetrics({ peerCount: () => 0, taskCounts: () => ({}) })
    countReportedTransfers(m, 'Seed', 'R', [
      { ok: true, sourcePeerId: 'A', bytes: 100 },
      { ok: true, sourcePeerId: 'Seed', bytes: 40 },
      { ok: true, sourcePeerId: 'R', bytes: 7 },
      { ok: false, sourcePeerId: 'A', bytes: 1000 },
      { ok: true, sourcePeerId: 'B' }
    ])
    expect(await counterValue(m.swarmPieceBytes, { from: 'peer' })).toBe(100)
    expect(await counterValue(m.swarmPieceBytes, { from: 'supernode' })).toBe(40)
    // Both series are exported from the start.
    const text = await m.registry.metrics()
    expect(text).toMatch(/^damselfly_swarm_piece_bytes_total\{from="peer"\} 100$/m)
    expect(text).toMatch(/^damselfly_swarm_piece_bytes_total\{from="supernode"\} 40$/m)
    expect(await counterValue(m.upstreamBytes)).toBe(0)
  })

  it('exports every metric CONTRACTS.md names, with its type', async () => {
    const text = await createMetrics({ peerCount: () => 2, taskCounts: () => ({ running: 1 }) }).registry.metrics()
    for (const [name, type] of [
      ['damselfly_upstream_bytes_total', 'counter'], ['damselfly_piece_bytes_uploaded_total', 'counter'], ['damselfly_peers', 'gauge'],
      ['damselfly_tasks', 'gauge'], ['damselfly_build_info', 'gauge'], ['damselfly_swarm_piece_bytes_total', 'counter'], ['process_cpu_user_seconds_total', 'counter']
    ]) expect(text, name).toContain(`# TYPE ${name} ${type}`)
    expect(text).toMatch(/^damselfly_peers 2$/m)
    expect(text).toMatch(/^damselfly_build_info\{version="\d+\.\d+\.\d+"\} 1$/m)
  })
})
