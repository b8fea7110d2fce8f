import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'

/** One captured output line. */
export interface OutputLine {
  stream: 'stdout' | 'stderr'
  line: string
}

export interface StartProcessOptions {
  /** Short name used in the log file name and in error messages. */
  name: string
  command: string
  args: readonly string[]
  /** Directory that receives `<name>-<pid>.log` (both streams, each line prefixed `out|` or `err|`). */
  logDir: string
  cwd?: string
  /** Added to (not replacing) `process.env`. */
  env?: Record<string, string | undefined>
  /** Lines kept in memory for `lines()`/`waitForLine` history; default 5000. */
  ringSize?: number
  /** Run inside this network namespace (`ip netns exec NETNS command args…`; the PID stays the command's). */
  netns?: string
}

/**
 * `[command, args]`, or `['ip', ['netns', 'exec', netns, command, …args]]` when `netns` is set.
 * `ip netns exec` execs the command in place (no fork), so the child PID is the command's own.
 */
export function inNetns (netns: string | undefined, command: string, args: readonly string[]): [string, string[]] {
  return netns === undefined ? [command, [...args]] : ['ip', ['netns', 'exec', netns, command, ...args]]
}

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

/** Every process started by this module that has not exited yet; killed on process exit as a last resort. */
const live = new Set<ManagedProcess>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const p of live) {
      try { process.kill(p.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  })
}

/**
 * A child process whose output goes to a log file and to a bounded in-memory ring of lines.
 * It is stopped by PID only (never by name).
 */
export class ManagedProcess {
  readonly name: string
  readonly pid: number
  readonly logFile: string
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>
  readonly #child: ChildProcess
  readonly #ring: OutputLine[] = []
  readonly #ringSize: number
  readonly #listeners = new Set<(l: OutputLine) => void>()
  readonly #log: WriteStream
  #status: ExitStatus | undefined

  constructor (opts: StartProcessOptions) {
    installExitHook()
    this.name = opts.name
    this.#ringSize = opts.ringSize ?? 5000
    const [command, args] = inNetns(opts.netns, opts.command, opts.args)
    this.#child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    // Spawn failures (ENOENT) are emitted asynchronously as 'error'; the pid check below reports them.
    this.#child.on('error', () => {})
    if (this.#child.pid === undefined) {
      throw new Error(`could not start ${opts.name}: ${opts.command} (is it installed?)`)
    }
    this.pid = this.#child.pid
    this.logFile = join(opts.logDir, `${opts.name}-${this.pid}.log`)
    this.#log = createWriteStream(this.logFile)
    live.add(this)
    const streamsDone = Promise.all([
      this.#capture(this.#child.stdout!, 'stdout'),
      this.#capture(this.#child.stderr!, 'stderr')
    ])
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.#child.once('exit', (code, signal) => {
        live.delete(this)
        // Wait for the pipes to drain so that every line is seen before callers act on the exit.
        void streamsDone.then(() => {
          this.#status = { code, signal }
          this.#log.end()
          resolve(this.#status)
        })
      })
    })
  }

  /** Exit status, or undefined while running. */
  get status (): ExitStatus | undefined { return this.#status }

  /** The last `ringSize` lines of both streams, oldest first. */
  lines (stream?: 'stdout' | 'stderr'): OutputLine[] {
    return stream === undefined ? [...this.#ring] : this.#ring.filter((l) => l.stream === stream)
  }

  /** The ring as text, e.g. for an assertion message. */
  output (): string {
    return this.#ring.map((l) => `${l.stream === 'stdout' ? 'out' : 'err'}| ${l.line}`).join('\n')
  }

  /** Calls `fn` for every line from now on (not for lines already captured). Returns an unsubscribe function. */
  onLine (fn: (l: OutputLine) => void): () => void {
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  /**
   * Resolves with the first line (already in the ring, or arriving later) for which `predicate` returns true.
   * Rejects on timeout or if the process exits first; the error carries the tail of the output.
   */
  async waitForLine (predicate: (line: string, stream: 'stdout' | 'stderr') => boolean, timeoutMs: number): Promise<string> {
    const seen = this.#ring.find((l) => predicate(l.line, l.stream))
    if (seen !== undefined) return seen.line
    return await new Promise<string>((resolve, reject) => {
      const finish = (err: Error | undefined, line?: string): void => {
        clearTimeout(timer)
        unsubscribe()
        if (err !== undefined) reject(err)
        else resolve(line!)
      }
      const unsubscribe = this.onLine((l) => {
        let ok = false
        try { ok = predicate(l.line, l.stream) } catch (err) { finish(err as Error); return }
        if (ok) finish(undefined, l.line)
      })
      const timer = setTimeout(() => {
        finish(new Error(`${this.name} (pid ${this.pid}): no matching line within ${timeoutMs} ms\n${this.#tail()}`))
      }, timeoutMs)
      void this.exited.then((s) => {
        finish(new Error(`${this.name} (pid ${this.pid}) exited (code ${s.code}, signal ${s.signal}) before a matching line\n${this.#tail()}`))
      })
    })
  }

  /**
   * Sends SIGTERM to this PID, then SIGKILL after `graceMs`. Resolves with the exit code
   * (null when killed by a signal). Idempotent.
   */
  async stop (graceMs = 5000): Promise<number | null> {
    if (this.#status === undefined) {
      try { process.kill(this.pid, 'SIGTERM') } catch { /* already exited */ }
      const timer = setTimeout(() => {
        try { process.kill(this.pid, 'SIGKILL') } catch { /* already exited */ }
      }, graceMs)
      await this.exited
      clearTimeout(timer)
    }
    return this.#status!.code
  }

  #tail (n = 40): string {
    return this.#ring.slice(-n).map((l) => `  ${l.stream === 'stdout' ? 'out' : 'err'}| ${l.line}`).join('\n') +
      `\n  (full log: ${this.logFile})`
  }

  async #capture (src: Readable, stream: 'stdout' | 'stderr'): Promise<void> {
    const rl = createInterface({ input: src, crlfDelay: Infinity })
    const prefix = stream === 'stdout' ? 'out| ' : 'err| '
    for await (const line of rl) {
      this.#log.write(prefix + line + '\n')
      const entry = { stream, line }
      this.#ring.push(entry)
      if (this.#ring.length > this.#ringSize) this.#ring.shift()
      for (const fn of this.#listeners) fn(entry)
    }
  }
}

/** Starts a child process with captured output; see {@link ManagedProcess}. */
export function startProcess (opts: StartProcessOptions): ManagedProcess {
  return new ManagedProcess(opts)
}

/** Stops every process this module started that is still running (by PID). For a last-resort `afterAll`. */
export async function stopAllProcesses (graceMs = 5000): Promise<void> {
  await Promise.all([...live].map(async (p) => await p.stop(graceMs)))
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  durationMs: number
  timedOut: boolean
}

export interface RunOptions {
  timeoutMs?: number
  env?: Record<string, string | undefined>
  cwd?: string
  /** Keep at most this many characters of each stream (the tail); default 1 MiB. */
  maxOutput?: number
  /** Run inside this network namespace (`ip netns exec NETNS …`). */
  netns?: string
}

/**
 * Runs a command to completion and returns its output; never rejects on a non-zero exit.
 * On timeout the process gets SIGTERM, then SIGKILL 3 s later, and `timedOut` is true.
 */
export async function runCommand (command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now()
  const max = opts.maxOutput ?? 1 << 20
  const [cmd, argv] = inNetns(opts.netns, command, args)
  const child = spawn(cmd, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout = (stdout + d).slice(-max) })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-max) })
  let timedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const timer = opts.timeoutMs === undefined
    ? undefined
    : setTimeout(() => {
      timedOut = true
      child.kill('SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), 3000)
    }, opts.timeoutMs)
  const { code, signal } = await new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => { resolve({ code: c, signal: s }) })
  })
  clearTimeout(timer)
  clearTimeout(killTimer)
  return { code, signal, stdout, stderr, durationMs: performance.now() - started, timedOut }
}

/** Like {@link runCommand} but throws (with both streams in the message) unless the exit code is 0. */
export async function runChecked (command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runCommand(command, args, opts)
  if (r.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (code ${r.code}, signal ${r.signal}${r.timedOut ? ', timed out' : ''})\n` +
      `stdout: ${r.stdout.slice(-4000)}\nstderr: ${r.stderr.slice(-4000)}`)
  }
  return r
}
