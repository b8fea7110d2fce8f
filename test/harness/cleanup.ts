import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A LIFO stack of teardown steps. Tests create one per file, register every
 * started process and temp dir with it, and call `run()` in `afterAll`.
 * Teardown steps that throw are collected and rethrown as one AggregateError
 * after every step has run, so one failing step never leaks the others.
 */
export class Cleanup {
  readonly #steps: Array<{ name: string; fn: () => unknown }> = []

  /** Registers a teardown step; steps run in reverse order of registration. */
  defer (name: string, fn: () => unknown): void {
    this.#steps.push({ name, fn })
  }

  /** Creates a private directory under the OS temp dir, removed by `run()` unless `DAMSELFLY_KEEP_TMP=1`. */
  async tempDir (prefix = 'damselfly-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    this.defer(`rm ${dir}`, async () => {
      if (process.env.DAMSELFLY_KEEP_TMP === '1') return
      await rm(dir, { recursive: true, force: true, maxRetries: 3 })
    })
    return dir
  }

  /** Runs every step (newest first) and empties the stack. */
  async run (): Promise<void> {
    const errors: unknown[] = []
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!
      try {
        await step.fn()
      } catch (err) {
        errors.push(new Error(`cleanup step "${step.name}" failed`, { cause: err }))
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed')
  }
}
