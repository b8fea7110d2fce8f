/**
 * Runs `refresh` every `everyMs` after the previous run ended (never two at once, never a backlog
 * after a slow run), on an unref'd timer so it never keeps the process alive. The supernode
 * discovery and the piece allow-list both refresh this way.
 */
export class RefreshLoop {
  readonly #refresh: () => Promise<void>
  readonly #everyMs: number
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (refresh: () => Promise<void>, everyMs: number) {
    this.#refresh = refresh
    this.#everyMs = everyMs
  }

  get stopped (): boolean { return this.#stopped }

  /** Schedules the next run (the caller ran the first one itself, usually awaited at start). */
  start (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.#refresh().finally(() => { this.start() }) }, this.#everyMs)
    this.#timer.unref()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}
