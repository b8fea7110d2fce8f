import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { layoutFor, pieceRange, sha256Of, type PreheatBlobResult, type PreheatFeedResponse } from '@damselfly/proto'
import { FsPieceCache } from '../storage/fs-piece-cache.js'
import type { PreheatFeed } from './feed-client.js'
import { PreheatFollower } from './preheat-follower.js'

const MiB = 1024 * 1024

/** A random blob written whole into a cache, as a finished download leaves it. */
function blob (size: number): { digest: string, write: (cache: FsPieceCache) => Promise<void> } {
  const bytes = new Uint8Array(randomBytes(size))
  const digest = sha256Of(bytes)
  const layout = layoutFor(size)
  return {
    digest,
    write: async (cache) => {
      for (let i = 0; i < layout.pieceCount; i++) {
        const r = pieceRange(layout, i)
        const piece = bytes.subarray(r.start, r.end)
        await cache.writePiece(digest, layout, i, sha256Of(piece), piece)
      }
    }
  }
}

/** A feed that offers one preheat entry, records the report, then waits out every later poll. */
function oneEntryFeed (digest: string): PreheatFeed & { reports: PreheatBlobResult[][] } {
  const reports: PreheatBlobResult[][] = []
  let offered = false
  return {
    reports,
    async poll (_peerId, _query, signal): Promise<PreheatFeedResponse> {
      if (!offered) {
        offered = true
        return { version: 1, preheats: [{ id: '1', blobs: [{ digest, url: `http://r/v2/x/blobs/${digest}`, size: 3 * MiB }] }] }
      }
      await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
      return { version: 1, preheats: [] }
    },
    async report (_peerId, _id, results) { reports.push(results) }
  }
}

describe('preheat pins what it fetched', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dfc-preheat-pin-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('a preheated blob survives quota eviction that drops a more recently used one', async () => {
    const evicted: string[] = []
    const cache = await FsPieceCache.open(dir, { quota: { bytes: 7 * MiB }, onRemoved: (digests, reason) => { if (reason === 'quota') evicted.push(...digests) } })
    const preheated = blob(3 * MiB)
    const pins: Array<{ digest: string, forMs: number }> = []
    const feed = oneEntryFeed(preheated.digest)
    const follower = new PreheatFollower({ peerId: 'P', hostname: 'h', pinMs: 60_000 }, {
      feed,
      fetchBlob: async () => { await preheated.write(cache) },
      pin: (digest, forMs) => { pins.push({ digest, forMs }); cache.pin(digest, forMs) },
      logger: pino({ level: 'silent' })
    })
    follower.start()
    for (let i = 0; i < 400 && feed.reports.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 5))
    await follower.stop()
    expect(feed.reports).toEqual([[{ digest: preheated.digest, ok: true }]])
    expect(pins).toEqual([{ digest: preheated.digest, forMs: 60_000 }])

    // Two pulls after the preheat: the second needs room, and the least recently used blob (the
    // preheated one) would go first if it were not pinned.
    const pulledFirst = blob(3 * MiB)
    const pulledSecond = blob(3 * MiB)
    await pulledFirst.write(cache)
    await pulledSecond.write(cache)
    expect(evicted).toEqual([pulledFirst.digest])
    expect(await cache.get(preheated.digest)).toBeDefined()
    await cache.close()
  })
})
