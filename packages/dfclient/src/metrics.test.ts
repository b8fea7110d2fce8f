import { describe, expect, it } from 'vitest'
import { createMetrics } from './metrics.js'

describe('dfclient metrics', () => {
  it('exports every metric CONTRACTS.md names, with its type and fixed labels from the start', async () => {
    const text = await createMetrics('1.2.3').registry.metrics()
    for (const [name, type] of [
      ['damselfly_blob_bytes_served_total', 'counter'], ['damselfly_piece_bytes_received_total', 'counter'],
      ['damselfly_piece_bytes_uploaded_total', 'counter'], ['damselfly_piece_verify_failures_total', 'counter'],
      ['damselfly_upstream_fallbacks_total', 'counter'], ['damselfly_build_info', 'gauge'], ['process_cpu_user_seconds_total', 'counter']
    ]) expect(text, name).toContain(`# TYPE ${name} ${type}`)
    for (const source of ['local', 'p2p', 'upstream']) expect(text).toMatch(new RegExp(`^damselfly_blob_bytes_served_total\\{source="${source}"\\} 0$`, 'm'))
    for (const from of ['peer', 'supernode']) expect(text).toMatch(new RegExp(`^damselfly_piece_bytes_received_total\\{from="${from}"\\} 0$`, 'm'))
    expect(text).toMatch(/^damselfly_build_info\{version="1\.2\.3"\} 1$/m)
  })
})
