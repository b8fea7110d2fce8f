import { expect, it } from 'vitest'
import { ConcurrencyGate } from './concurrency-gate.js'
import { gateQueueLimit } from './http-limits.js'

it('admits `concurrency` holders, queues FIFO up to the limit, refuses with the reason', async () => {
  const gate = new ConcurrencyGate({ concurrency: 1, queueLimit: 1, queueTimeoutMs: 50 })
  const signal = new AbortController().signal
  const first = await gate.enter(signal)
  expect(typeof first).toBe('function')
  const queued = gate.enter(signal)
  expect(await gate.enter(signal)).toBe('queue_full')
  ;(first as () => void)()
  const second = await queued
  expect(typeof second).toBe('function')
  expect(await gate.enter(signal)).toBe('wait_timeout')
  expect(gate.refused).toBe(2)
  ;(second as () => void)()
  expect(gate.active).toBe(0)
})

it('gives the waiting room at least 1,024 places', () => {
  expect(gateQueueLimit(1)).toBe(1024)
  expect(gateQueueLimit(8192)).toBe(8192 * 16)
})
