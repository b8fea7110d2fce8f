import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { PreheatJob } from './job.js'
import { createJob } from './job-state.js'
import { LevelPreheatJobStore } from './level-job-store.js'
import { MemoryPreheatJobStore } from './memory-job-store.js'
import type { PreheatJobStore } from './ports.js'

const job = (id: number): PreheatJob => createJob(id, `group_${id}`, { driver: 'kraken', url: 'http://r/v2/a/manifests/t', scope: 'single_seed_peer', platforms: 'all', concurrency: 1, timeoutMs: 1000, requestCredentials: false }, id)

// One conformance suite, run against the fake and the real store.
const dirs: string[] = []
const impls: Array<{ name: string, make: () => Promise<{ store: PreheatJobStore, reopen: () => PreheatJobStore }> }> = [
  { name: 'MemoryPreheatJobStore', make: async () => { const store = new MemoryPreheatJobStore(); return { store, reopen: () => store } } },
  {
    name: 'LevelPreheatJobStore',
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sn-preheat-'))
      dirs.push(dir)
      return { store: new LevelPreheatJobStore(join(dir, 'preheat')), reopen: () => new LevelPreheatJobStore(join(dir, 'preheat')) }
    }
  }
]

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

for (const impl of impls) {
  describe(impl.name, () => {
    it('stores, lists by ascending id, deletes, and survives a reopen; absence is undefined', async () => {
      const { store, reopen } = await impl.make()
      await store.open()
      expect(await store.get(1)).toBeUndefined()
      for (const id of [10, 2, 1]) await store.put(job(id))
      await store.put({ ...job(2), state: 'failed' })
      expect((await store.list()).map(j => j.id)).toEqual([1, 2, 10])
      expect((await store.get(2))?.state).toBe('failed')
      await store.delete(1)
      expect(await store.get(1)).toBeUndefined()
      await store.close()
      const again = reopen()
      await again.open()
      expect((await again.list()).map(j => [j.id, j.state])).toEqual([[2, 'failed'], [10, 'pending']])
      await again.close()
    })
  })
}
