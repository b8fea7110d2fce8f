import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { dfError, type PieceResult } from '@damselfly/proto'
import { PieceReporter, type ReportClient } from './piece-reporter.js'

const D1 = `sha256:${'a'.repeat(64)}`
const D2 = `sha256:${'b'.repeat(64)}`
const logger = pino({ level: 'silent' })

function fakeClient (fail?: (kind: 'held' | 'results') => Error | undefined): ReportClient & { calls: Array<{ kind: 'held' | 'results', digest: string, body: number[] | PieceResult[] }> } {
  const c = {
    calls: [] as Array<{ kind: 'held' | 'results', digest: string, body: number[] | PieceResult[] }>,
    reportPieces: async (digest: string, _peerId: string, pieces: number[]) => {
      c.calls.push({ kind: 'held', digest, body: pieces })
      const err = fail?.('held')
      if (err !== undefined) throw err
    },
    reportPieceResults: async (digest: string, _peerId: string, results: PieceResult[]) => {
      c.calls.push({ kind: 'results', digest, body: results })
      const err = fail?.('results')
      if (err !== undefined) throw err
    }
  }
  return c
}

const ok = (index: number): PieceResult => ({ index, sourcePeerId: 'QmSource', ok: true, bytes: 4, durationMs: 1 })
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('PieceReporter', () => {
  it('batches held pieces and transfer results per task into one POST each, holdings first', async () => {
    const client = fakeClient()
    const reporter = new PieceReporter(client, 'QmMe', logger, { delayMs: 30 })
    reporter.reportResults(D1, [ok(0)])
    reporter.report(D1, [2, 0])
    reporter.reportResults(D1, [{ index: 1, sourcePeerId: 'QmBad', ok: false, code: 'DF_ERR_PIECE_DIGEST_MISMATCH' }])
    reporter.report(D2, [5])
    expect(client.calls).toEqual([])
    await sleep(80)
    expect(client.calls).toEqual([
      { kind: 'held', digest: D1, body: [0, 2] },
      { kind: 'held', digest: D2, body: [5] },
      { kind: 'results', digest: D1, body: [ok(0), { index: 1, sourcePeerId: 'QmBad', ok: false, code: 'DF_ERR_PIECE_DIGEST_MISMATCH' }] }
    ])
    reporter.stop()
  })

  it('flushes at once when a task has a full batch, and never sends more than the batch size per POST', async () => {
    const client = fakeClient()
    const reporter = new PieceReporter(client, 'QmMe', logger, { delayMs: 10_000, maxBatch: 4 })
    reporter.reportResults(D1, [ok(0), ok(1), ok(2)])
    await sleep(20)
    expect(client.calls).toEqual([])
    reporter.reportResults(D1, [ok(3), ok(4), ok(5)])
    await sleep(20)
    expect(client.calls.map(c => (c.body as PieceResult[]).map(r => r.index))).toEqual([[0, 1, 2, 3], [4, 5]])
    reporter.stop()
  })

  it('keeps a bounded queue of results while the supernode is down, and never throws', async () => {
    let down = true
    const client = fakeClient(() => down ? dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'down') : undefined)
    const reporter = new PieceReporter(client, 'QmMe', logger, { delayMs: 5, maxBatch: 10, maxQueuedResults: 10 })
    for (let i = 0; i < 25; i++) reporter.reportResults(D1, [ok(i)])
    await reporter.flush()
    down = false
    client.calls.length = 0
    await reporter.flush()
    const sent = client.calls.flatMap(c => c.kind === 'results' ? (c.body as PieceResult[]).map(r => r.index) : [])
    expect(sent.length).toBeLessThanOrEqual(10)
    expect(sent.at(-1)).toBe(24) // the newest are kept
    reporter.stop()
  })

  it('drops reports the supernode refuses for good (unknown peer or task) instead of retrying them', async () => {
    const client = fakeClient(() => dfError('DF_ERR_PEER_UNKNOWN', 'announce again'))
    const reporter = new PieceReporter(client, 'QmMe', logger, { delayMs: 5 })
    reporter.report(D1, [1])
    reporter.reportResults(D1, [ok(1)])
    await reporter.flush()
    client.calls.length = 0
    await reporter.flush()
    expect(client.calls).toEqual([])
    reporter.stop()
  })
})
