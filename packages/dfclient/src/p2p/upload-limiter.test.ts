import { describe, expect, it } from 'vitest'
import { RATE_SLICE_BYTES, TokenBucket, UploadGate, parseRate, throttled, type UploadClock } from './upload-limiter.js'

/** A clock whose time moves only when the test says so; sleepers wake in deadline order. */
function manualClock (): UploadClock & { advance: (ms: number) => Promise<void>, t: number } {
  const timers: Array<{ at: number, resolve: () => void }> = []
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms: number, signal: AbortSignal) => {
      await new Promise<void>((resolve, reject) => {
        const timer = { at: clock.t + ms, resolve }
        timers.push(timer)
        signal.addEventListener('abort', () => { timers.splice(timers.indexOf(timer), 1); reject(signal.reason) }, { once: true })
      })
    },
    advance: async (ms: number) => {
      const end = clock.t + ms
      for (;;) {
        timers.sort((a, b) => a.at - b.at)
        const next = timers[0]
        if (next === undefined || next.at > end) break
        timers.shift()
        clock.t = next.at
        next.resolve()
        await new Promise(resolve => setImmediate(resolve))
      }
      clock.t = end
    }
  }
  return clock
}

/** A clock where every sleep simply moves time forward (one caller at a time). */
function jumpingClock (): UploadClock & { t: number } {
  const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => { clock.t += ms } }
  return clock
}

const never = new AbortController().signal

describe('TokenBucket', () => {
  it('respects the rate over time: granted bytes never exceed burst + rate × elapsed', async () => {
    const clock = jumpingClock()
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 100, clock })
    for (let i = 0; i < 100; i++) {
      await bucket.take(50, never)
      expect(bucket.granted).toBeLessThanOrEqual(100 + 1000 * clock.t / 1000 + 1e-6)
    }
    expect(bucket.granted).toBe(5000)
    // Nothing idles: the whole debt after the burst is paid at exactly the rate.
    expect(clock.t).toBeCloseTo((5000 - 100) / 1000 * 1000, 6)
  })

  it('bounds a burst after idling to burstBytes', () => {
    const clock = jumpingClock()
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 100, clock })
    clock.t += 60_000 // a minute idle refills only up to the burst
    expect(bucket.reserve(100)).toBe(0)
    expect(bucket.reserve(10)).toBeCloseTo(10, 6)
  })

  it('serves concurrent takers in order, each when its share is paid', async () => {
    const clock = manualClock()
    const bucket = new TokenBucket({ bytesPerSecond: 100, burstBytes: 100, clock })
    const done: Array<[string, number]> = []
    const takers = ['a', 'b', 'c'].map(async name => { await bucket.take(200, never); done.push([name, clock.t]) })
    await clock.advance(10_000)
    await Promise.all(takers)
    expect(done).toEqual([['a', 1000], ['b', 3000], ['c', 5000]])
    expect(bucket.granted).toBe(600)
  })

  it('refunds a reservation whose wait is aborted', async () => {
    const clock = manualClock()
    const bucket = new TokenBucket({ bytesPerSecond: 100, burstBytes: 100, clock })
    const ac = new AbortController()
    const taking = bucket.take(300, ac.signal)
    ac.abort(new Error('gone'))
    await expect(taking).rejects.toThrow('gone')
    expect(bucket.granted).toBe(0)
    expect(bucket.reserve(100)).toBe(0) // the full burst is there again
  })

  it('rejects a non-positive rate', () => {
    expect(() => new TokenBucket({ bytesPerSecond: 0 })).toThrow(RangeError)
  })
})

describe('throttled', () => {
  it('re-slices the body, keeps every byte and takes each slice from the bucket', async () => {
    const clock = jumpingClock()
    const bucket = new TokenBucket({ bytesPerSecond: 1024 * 1024, burstBytes: RATE_SLICE_BYTES, clock })
    const chunks = [new Uint8Array(200_000).fill(1), new Uint8Array(10).fill(2), new Uint8Array(RATE_SLICE_BYTES).fill(3)]
    async function * body (): AsyncGenerator<Uint8Array> { yield * chunks }
    const out: Uint8Array[] = []
    for await (const slice of throttled(body(), bucket, never)) out.push(slice)
    expect(out.every(s => s.byteLength <= RATE_SLICE_BYTES)).toBe(true)
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true)
    expect(bucket.granted).toBe(200_010 + RATE_SLICE_BYTES)
    expect(clock.t).toBeCloseTo((bucket.granted - RATE_SLICE_BYTES) / (1024 * 1024) * 1000, 6)
  })
})

describe('parseRate', () => {
  const cases: Array<[string, number | null | undefined]> = [
    ['65536', 65536], ['50MiB', 50 * 1024 ** 2], ['100MB', 100e6], ['100MB/s', 100e6], ['1Gbit', 125e6],
    ['100mbit/s', 12.5e6], ['8kbits', 1000], ['unlimited', null], ['0', null], ['30%', undefined], ['fast', undefined], ['1bit', undefined]
  ]
  for (const [text, want] of cases) it(JSON.stringify(text), () => { expect(parseRate(text)).toBe(want) })
})

describe('UploadGate', () => {
  it('admits N at once and hands freed slots to waiters in FIFO order', async () => {
    const gate = new UploadGate({ concurrency: 2, queueTimeoutMs: 60_000 })
    const r1 = await gate.acquire(never)
    const r2 = await gate.acquire(never)
    expect(r1).toBeTypeOf('function')
    expect(r2).toBeTypeOf('function')
    expect(gate.active).toBe(2)
    const order: string[] = []
    const waiting = ['x', 'y', 'z'].map(async name => { const release = await gate.acquire(never); order.push(name); return release })
    expect(gate.queued).toBe(3)
    r1?.()
    r1?.() // idempotent: must not free a second slot
    await new Promise(resolve => setImmediate(resolve))
    expect(order).toEqual(['x'])
    expect(gate.active).toBe(2)
    r2?.()
    await new Promise(resolve => setImmediate(resolve))
    expect(order).toEqual(['x', 'y'])
    const [rx, ry] = await Promise.all(waiting.slice(0, 2))
    rx?.()
    const rz = await waiting[2]
    expect(order).toEqual(['x', 'y', 'z'])
    ry?.()
    rz?.()
    expect(gate.active).toBe(0)
    expect(gate.queued).toBe(0)
  })

  it('refuses at once when the queue is full', async () => {
    const gate = new UploadGate({ concurrency: 1, queueLimit: 1, queueTimeoutMs: 60_000 })
    const held = await gate.acquire(never)
    const queued = gate.acquire(never)
    expect(await gate.acquire(never)).toBeUndefined()
    expect(gate.refused).toBe(1)
    held?.()
    const next = await queued
    expect(next).toBeTypeOf('function')
    next?.()
  })

  it('refuses a request that waited past the deadline, and one whose caller gave up', async () => {
    const gate = new UploadGate({ concurrency: 1, queueTimeoutMs: 20 })
    const held = await gate.acquire(never)
    expect(await gate.acquire(never)).toBeUndefined()
    const ac = new AbortController()
    const pending = gate.acquire(ac.signal)
    ac.abort()
    expect(await pending).toBeUndefined()
    expect(gate.queued).toBe(0)
    expect(gate.refused).toBe(2)
    held?.()
    expect(gate.active).toBe(0)
  })
})
