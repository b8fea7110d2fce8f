import { expect, it } from 'vitest'
import { progressBar, summary } from './progress-line.js'

const p = (done: number, peers = 0): Parameters<typeof summary>[0] => ({ blobs: { total: 4, done: done / 25 }, bytes: { total: 100 * 1024 * 1024, done: done * 1024 * 1024 }, peers: { total: peers, done: 0 } })

it('draws a bar from the bytes done, with blob and byte counts', () => {
  expect(progressBar(p(50))).toBe(`[${'█'.repeat(15)}${'░'.repeat(15)}]  50%  2/4 blobs  50.0 MiB/100.0 MiB`)
  expect(progressBar(p(0)).startsWith(`[${'░'.repeat(30)}]   0%`)).toBe(true)
})

it('plain lines name peers only once some are targeted', () => {
  expect(summary(p(100))).toBe('4/4 blobs  100.0 MiB/100.0 MiB')
  expect(summary(p(100, 3))).toBe('4/4 blobs  100.0 MiB/100.0 MiB  peers 0/3')
})
