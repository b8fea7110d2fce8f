import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LevelTaskStore } from './level-task-store.js'
import { MemoryTaskStore } from './memory-task-store.js'
import type { TaskRecord, TaskStore } from './task-store.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const record = (taskId: string, state: TaskRecord['state'] = 'running'): TaskRecord =>
  ({ taskId, size: 10, pieceSize: 4, pieceCount: 3, state, createdAt: 1 })

// One conformance suite, run against the fake and the real store.
const dirs: string[] = []
const impls: Array<{ name: string, make: () => Promise<TaskStore> }> = [
  { name: 'MemoryTaskStore', make: async () => new MemoryTaskStore() },
  {
    name: 'LevelTaskStore',
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sn-level-'))
      dirs.push(dir)
      return new LevelTaskStore(join(dir, 'meta'))
    }
  }
]

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

for (const impl of impls) {
  describe(impl.name, () => {
    it('stores, lists and deletes tasks; absence is undefined', async () => {
      const store = await impl.make()
      await store.open()
      expect(await store.getTask(A)).toBeUndefined()
      await store.putTask(record(A))
      await store.putTask(record(B, 'succeeded'))
      expect(await store.getTask(A)).toEqual(record(A))
      expect((await store.listTasks()).map(t => t.taskId).sort()).toEqual([A, B])
      await store.deleteTask(A)
      expect(await store.getTask(A)).toBeUndefined()
      expect((await store.listTasks()).map(t => t.taskId)).toEqual([B])
      await store.close()
    })

    it('keeps piece digests per task, by index, and clears them', async () => {
      const store = await impl.make()
      await store.open()
      await store.putTask(record(A))
      await store.putTask(record(B))
      for (const i of [2, 0, 10]) await store.putPieceDigest(A, i, `sha256:${String(i).repeat(64).slice(0, 64)}`)
      await store.putPieceDigest(B, 0, 'sha256:other')
      const pieces = await store.getPieceDigests(A)
      expect([...pieces.keys()].sort((x, y) => x - y)).toEqual([0, 2, 10])
      expect(pieces.get(2)).toBe(`sha256:${'2'.repeat(64)}`)
      await store.clearPieceDigests(A)
      expect((await store.getPieceDigests(A)).size).toBe(0)
      expect(await store.getTask(A)).toBeDefined()
      expect((await store.getPieceDigests(B)).get(0)).toBe('sha256:other')
      await store.deleteTask(B)
      expect((await store.getPieceDigests(B)).size).toBe(0)
      await store.close()
    })
  })
}

it('LevelTaskStore persists across reopen', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sn-level-'))
  dirs.push(dir)
  const first = new LevelTaskStore(join(dir, 'meta'))
  await first.open()
  await first.putTask(record(A, 'succeeded'))
  await first.putPieceDigest(A, 1, 'sha256:x')
  await first.close()
  const second = new LevelTaskStore(join(dir, 'meta'))
  await second.open()
  expect((await second.getTask(A))?.state).toBe('succeeded')
  expect((await second.getPieceDigests(A)).get(1)).toBe('sha256:x')
  await second.close()
})
