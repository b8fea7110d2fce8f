import { afterEach, describe, expect, it, vi } from 'vitest'
import { RefreshLoop } from './refresh-loop.js'

describe('RefreshLoop', () => {
  afterEach(() => { vi.useRealTimers() })

  it('runs every interval after the previous run ended, and never after stop', async () => {
    vi.useFakeTimers()
    const finish: Array<() => void> = []
    let runs = 0
    const loop = new RefreshLoop(async () => { runs++; await new Promise<void>(resolve => finish.push(resolve)) }, 1_000)
    loop.start()
    await vi.advanceTimersByTimeAsync(999)
    expect(runs).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(runs).toBe(1)
    // A slow run: no second one starts while it is under way.
    await vi.advanceTimersByTimeAsync(5_000)
    expect(runs).toBe(1)
    finish.shift()!()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(runs).toBe(2)
    loop.stop()
    expect(loop.stopped).toBe(true)
    finish.shift()!()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(2)
  })
})
