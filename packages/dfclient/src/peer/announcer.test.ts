import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { layoutFor, type AnnounceRequest } from '@damselfly/proto'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import type { SupernodeClient } from '../supernode/client.js'
import type { PieceReporter } from '../supernode/piece-reporter.js'
import { Announcer } from './announcer.js'

const PEER = '12D3KooWPeer'
const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

function fakes (): { calls: string[], reports: Array<[string, number[]]>, client: SupernodeClient, reporter: PieceReporter } {
  const calls: string[] = []
  const reports: Array<[string, number[]]> = []
  const client = {
    url: 'http://sn',
    announce: async (r: AnnounceRequest) => { calls.push('announce'); return { peerId: r.peerId, heartbeatIntervalMs: 60_000, ttlMs: 180_000, supernode: { peerId: 'sn', addrs: [] } } },
    heartbeat: async () => true,
    leave: async () => { calls.push('leave') }
  } as unknown as SupernodeClient
  const reporter = { report: (d: string, i: number[]) => { reports.push([d, [...i]]) }, flush: async () => {} } as unknown as PieceReporter
  return { calls, reports, client, reporter }
}

describe('Announcer holdings resync', () => {
  it('after evictions: leaves, announces again and re-reports held and staged pieces, batched and rate-limited', async () => {
    const f = fakes()
    const cache = new MemoryPieceCache()
    const layout = layoutFor(10)
    await cache.writePiece(D1, layout, 0, `sha256:${'a'.repeat(64)}`, new Uint8Array(10))
    const a = new Announcer({ peerId: PEER, addrs: () => ['/ip4/127.0.0.1/tcp/1'], hostname: 'h', version: 'v', resyncMinIntervalMs: 10_000 }, {
      client: f.client, cache, reporter: f.reporter, logger: pino({ level: 'silent' }), staged: () => [{ digest: D2, pieces: [3] }]
    })
    await a.start()
    expect(f.calls).toEqual(['announce'])
    f.reports.length = 0
    a.forget([D1])
    a.forget([D2]) // same batch
    await sleep(1200)
    expect(f.calls).toEqual(['announce', 'leave', 'announce'])
    expect(f.reports).toEqual([[D1, [0]], [D2, [3]]])
    a.forget([D1])
    await sleep(1200)
    expect(f.calls).toHaveLength(3) // at most one resync per 10 s
    await a.stop()
    expect(f.calls.at(-1)).toBe('leave')
  })

  it('does nothing before the first announce or after stop', async () => {
    const f = fakes()
    const a = new Announcer({ peerId: PEER, addrs: () => ['/ip4/127.0.0.1/tcp/1'], hostname: 'h', version: 'v' }, { client: f.client, cache: new MemoryPieceCache(), reporter: f.reporter, logger: pino({ level: 'silent' }) })
    await a.stop()
    a.forget([D1])
    await sleep(1100)
    expect(f.calls).toEqual([])
  })
})
