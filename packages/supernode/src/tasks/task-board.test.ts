import { describe, expect, it } from 'vitest'
import { layoutFor } from '@damselfly/proto'
import { TaskBoard, type TaskEvents } from './task-board.js'
import { MemoryTaskStore } from './memory-task-store.js'
import type { TaskRecord } from './task-store.js'

const GiB = 1024 ** 3
const id = (c: string): string => `sha256:${c.repeat(64)}`
const today = (taskId: string, size: number, state: TaskRecord['state']): TaskRecord =>
  ({ taskId, ...layoutFor(size), state, createdAt: 1 })

describe('TaskBoard.load', () => {
  it('discards tasks a previous process left running', async () => {
    const store = new MemoryTaskStore()
    const running = id('2')
    const done = id('3')
    await store.putTask(today(running, 1, 'running'))
    await store.putPieceDigest(running, 0, 'sha256:x')
    await store.putTask(today(done, 1, 'succeeded'))
    const fresh = new TaskBoard(store)
    expect((await fresh.load()).map(r => r.record.taskId)).toEqual([running])
    expect(await store.getTask(running)).toBeUndefined()
    expect((await store.getPieceDigests(running)).size).toBe(0)
    expect(fresh.record(done)?.state).toBe('succeeded')
    expect(fresh.countByState()).toEqual({ running: 0, succeeded: 1, failed: 0 })
  })

  it('drops tasks left running and tasks cut by another layout rule, and loads the rest with their layout', async () => {
    const store = new MemoryTaskStore()
    await store.open()
    await store.putTask(today(id('a'), GiB, 'running'))
    // Cut as before pieces grew with the blob: 256 pieces of 4 MiB (today 64 of 16 MiB).
    await store.putTask({ taskId: id('b'), size: GiB, pieceSize: 4 * 1024 * 1024, pieceCount: 256, state: 'succeeded', createdAt: 1 })
    await store.putPieceDigest(id('b'), 0, `sha256:${'0'.repeat(64)}`)
    await store.putTask(today(id('c'), GiB, 'succeeded'))
    const loaded: unknown[] = []
    const events = { taskLoaded: (e: unknown) => { loaded.push(e) } } as unknown as TaskEvents
    const board = new TaskBoard(store, () => 1, events)

    const dropped = await board.load()

    expect(dropped.map(d => [d.record.taskId, d.reason])).toEqual([[id('a'), 'abandoned'], [id('b'), 'layout']])
    expect(await store.getTask(id('b'))).toBeUndefined()
    expect((await store.getPieceDigests(id('b'))).size).toBe(0)
    expect(board.record(id('b'))).toBeUndefined()
    expect(board.record(id('c'))?.pieceSize).toBe(16 * 1024 * 1024)
    expect(loaded).toEqual([{ taskId: id('c'), pieceCount: 64, pieceSize: 16 * 1024 * 1024, state: 'succeeded' }])
  })
})
