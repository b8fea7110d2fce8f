import cliProgress from 'cli-progress'
import { formatBytes } from '@damselfly/proto'

/** Byte progress of a download: a bar on a terminal, nothing otherwise (the summary says it all). */
export interface Progress {
  /** Adds to the total once sizes are known. */
  grow: (bytes: number) => void
  add: (bytes: number) => void
  stop: () => void
}

/**
 * A single bar over all bytes on `stream` when it is a TTY (and `enabled`); a no-op otherwise, so
 * logs and CI output stay free of carriage returns.
 */
export function createProgress (stream: NodeJS.WriteStream, enabled: boolean): Progress {
  if (!enabled || stream.isTTY !== true) return { grow: () => {}, add: () => {}, stop: () => {} }
  const started = Date.now()
  let total = 0
  let value = 0
  const bar = new cliProgress.SingleBar({
    stream,
    hideCursor: true,
    barsize: 30,
    fps: 5,
    format: (options, params) => {
      const width = options.barsize ?? 30
      const done = params.total > 0 ? Math.round(width * params.value / params.total) : 0
      const seconds = Math.max(0.001, (Date.now() - started) / 1000)
      const pct = params.total > 0 ? Math.floor(100 * params.value / params.total) : 0
      return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${String(pct).padStart(3)}% ${formatBytes(params.value)} / ${formatBytes(params.total)} ${formatBytes(params.value / seconds)}/s`
    }
  })
  bar.start(0, 0)
  return {
    grow: (bytes) => { total += bytes; bar.setTotal(total) },
    add: (bytes) => { value += bytes; bar.update(value) },
    stop: () => { bar.stop() }
  }
}
