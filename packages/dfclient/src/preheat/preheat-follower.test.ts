import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { dfError, type PreheatBlobResult, type PreheatFeedEntry, type PreheatFeedResponse } from '@damselfly/proto'
import type { PreheatFeed } from './feed-client.js'
import { PreheatFollower } from './preheat-follower.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const entry: PreheatFeedEntry = { id: '7', blobs: [{ digest: A, url: `http://r/v2/x/blobs/${A}`, size: 1 }, { digest: B, url: `http://r/v2/x/blobs/${B}`, size: 2 }] }

/** A supernode feed in memory: lists `entries` until reported, can fail the first polls. */
class FakeFeed implements PreheatFeed {
  entries: PreheatFeedEntry[] = []
  version = 1
  failPolls = 0
  readonly polls: Array<{ since?: number, waitMs: number, hostname: string }> = []
  readonly reports: Array<{ id: string, results: PreheatBlobResult[] }> = []
  readonly #waiters = new Set<() => void>()

  async poll (_peerId: string, query: { since?: number, waitMs: number, hostname: string }, signal: AbortSignal): Promise<PreheatFeedResponse> {
    this.polls.push(query)
    if (this.failPolls > 0) { this.failPolls--; throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'down') }
    if (query.since !== undefined && query.since >= this.version) {
      await new Promise<void>(resolve => {
        const done = (): void => { clearTimeout(t); this.#waiters.delete(done); resolve() }
        const t = setTimeout(done, query.waitMs)
        signal.addEventListener('abort', done, { once: true })
        this.#waiters.add(done)
      })
    }
    return { version: this.version, preheats: [...this.entries] }
  }

  async report (_peerId: string, id: string, results: PreheatBlobResult[]): Promise<void> {
    this.reports.push({ id, results })
    this.entries = this.entries.filter(e => e.id !== id)
    this.publish()
  }

  publish (): void {
    this.version++
    for (const w of [...this.#waiters]) w()
  }
}

async function until (cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise(resolve => setTimeout(resolve, 5))
  expect(cond()).toBe(true)
}

describe('PreheatFollower', () => {
  it('fetches each blob of a new entry once and reports per blob, failures with their code', async () => {
    const feed = new FakeFeed()
    const fetched: string[] = []
    const follower = new PreheatFollower({ peerId: 'P', hostname: 'node-a', waitMs: 1000, retryMinMs: 5 }, {
      feed,
      fetchBlob: async (blob) => {
        fetched.push(blob.digest)
        if (blob.digest === B) throw dfError('DF_ERR_PEER_UNREACHABLE', 'no source answered')
      },
      pin: () => {},
      logger: pino({ level: 'silent' })
    })
    follower.start()
    await until(() => feed.polls.length >= 2)
    expect(feed.polls[0]).toEqual({ waitMs: 0, hostname: 'node-a' })
    feed.entries = [entry]
    feed.publish()
    await until(() => feed.reports.length === 1)
    expect(fetched).toEqual([A, B])
    expect(feed.reports[0]).toEqual({ id: '7', results: [{ digest: A, ok: true }, { digest: B, ok: false, code: 'DF_ERR_PEER_UNREACHABLE', message: 'no source answered' }] })
    await follower.stop()
  })

  it('keeps polling through a supernode outage, starting afresh without `since`', async () => {
    const feed = new FakeFeed()
    feed.failPolls = 2
    const follower = new PreheatFollower({ peerId: 'P', hostname: 'h', waitMs: 1000, retryMinMs: 5, retryMaxMs: 10 }, {
      feed,
      fetchBlob: async () => {},
      pin: () => {},
      logger: pino({ level: 'silent' })
    })
    follower.start()
    feed.entries = [entry]
    await until(() => feed.reports.length === 1)
    expect(feed.polls.slice(0, 3).map(p => p.since)).toEqual([undefined, undefined, undefined])
    await follower.stop()
  })
})
