import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { blobGets, egressBytes, parseAccessLogLine, type AccessLogEntry, type BlobGetStats } from './access-log.js'
import { runChecked, runCommand, startProcess, type ManagedProcess } from './processes.js'

export interface BasicAuth {
  username: string
  password: string
}

export interface StartRegistryOptions {
  /** Private directory for config, storage and logs (e.g. from `Cleanup.tempDir()`). */
  dir: string
  /** Require HTTP basic auth with these credentials (bcrypt htpasswd file). */
  auth?: BasicAuth
  /** Basic-auth realm; default `damselfly-test`. */
  realm?: string
  startTimeoutMs?: number
  /** Run inside this network namespace; readiness is then probed with `ip netns exec NETNS curl`. */
  netns?: string
  /** Listen address host; default 127.0.0.1. */
  listenHost?: string
  /** Listen port; default 0 (the kernel picks one). */
  port?: number
}

/** A running CNCF distribution registry (on 127.0.0.1 unless `listenHost` says otherwise) with filesystem storage. */
export interface Registry {
  /** `http://HOST:PORT` */
  url: string
  /** `HOST:PORT` (what image references and `--registry HOST=URL` use). */
  host: string
  port: number
  auth: BasicAuth | undefined
  process: ManagedProcess
  /** Every access-log entry seen so far (GET and HEAD), oldest first. */
  accessLog: () => AccessLogEntry[]
  /** A position in the access log; pass it to `blobGets`/`egressBytes` to count only later requests. */
  mark: () => number
  /** Digest → {count, bytes} of blob GETs answered 200/206 since `since` (default: start). */
  blobGets: (since?: number) => Map<string, BlobGetStats>
  /** Body bytes of every GET response since `since` (default: start). */
  egressBytes: (since?: number) => number
  /** Waits until the access log holds at least `n` entries (the log line is written after the response). */
  waitForLogEntries: (n: number, timeoutMs?: number) => Promise<void>
  stop: () => Promise<number | null>
}

/**
 * Starts `docker-registry serve CONFIG.yml` listening on 127.0.0.1:0 (the kernel picks the port, which is
 * read back from the registry's "listening on" line, so there is no probe/bind race), with
 * `storage.delete.enabled`, and waits until `GET /v2/` answers 200 (401 with auth).
 */
export async function startRegistry (opts: StartRegistryOptions): Promise<Registry> {
  const { dir } = opts
  const listenHost = opts.listenHost ?? '127.0.0.1'
  const realm = opts.realm ?? 'damselfly-test'
  let authYaml = ''
  if (opts.auth !== undefined) {
    const r = await runChecked('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password])
    await writeFile(join(dir, 'htpasswd'), r.stdout.trim() + '\n')
    authYaml = `auth:\n  htpasswd:\n    realm: ${JSON.stringify(realm)}\n    path: ${JSON.stringify(join(dir, 'htpasswd'))}\n`
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${listenHost}:${opts.port ?? 0}`,
    // A fixed secret silences the "No HTTP secret provided" warning; only this process uses it.
    '  secret: damselfly-test-secret',
    authYaml
  ].join('\n')
  const configPath = join(dir, 'config.yml')
  await writeFile(configPath, config)

  const proc = startProcess({ name: 'registry', command: 'docker-registry', args: ['serve', configPath], logDir: dir, netns: opts.netns })
  const entries: AccessLogEntry[] = []
  const waiters = new Set<() => void>()
  proc.onLine((l) => {
    if (l.stream !== 'stdout') return
    const e = parseAccessLogLine(l.line)
    if (e === undefined) return
    entries.push(e)
    for (const w of waiters) w()
  })

  try {
    const listening = /listening on \S*:(\d+)/
    const line = await proc.waitForLine((l) => listening.test(l), opts.startTimeoutMs ?? 15_000)
    const port = Number(listening.exec(line)![1])
    const url = `http://${listenHost}:${port}`
    await waitForV2(url, opts.auth === undefined ? 200 : 401, opts.startTimeoutMs ?? 15_000, opts.netns)
    return {
      url,
      host: `${listenHost}:${port}`,
      port,
      auth: opts.auth,
      process: proc,
      accessLog: () => [...entries],
      mark: () => entries.length,
      blobGets: (since = 0) => blobGets(entries.slice(since)),
      egressBytes: (since = 0) => egressBytes(entries.slice(since)),
      waitForLogEntries: async (n, timeoutMs = 5000) => {
        if (entries.length >= n) return
        await new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (entries.length < n) return
            clearTimeout(t)
            waiters.delete(check)
            resolve()
          }
          const t = setTimeout(() => {
            waiters.delete(check)
            reject(new Error(`registry access log has ${entries.length} entries, expected ${n}`))
          }, timeoutMs)
          waiters.add(check)
        })
      },
      stop: async () => await proc.stop()
    }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

async function waitForV2 (url: string, expected: number, timeoutMs: number, netns?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (netns !== undefined) {
      // This process lives in the root namespace and cannot reach the registry's address: ask curl inside.
      const r = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${url}/v2/`], { netns, timeoutMs: 5000 })
      if (Number(r.stdout.trim()) === expected) return
      last = `curl: ${r.stdout.trim()} ${r.stderr.trim()}`
      await new Promise((resolve) => setTimeout(resolve, 50))
      continue
    }
    try {
      const res = await request(`${url}/v2/`)
      await res.body.dump()
      if (res.statusCode === expected) return
      last = `status ${res.statusCode}`
    } catch (err) {
      last = String(err)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`registry at ${url} did not answer ${expected} on /v2/ within ${timeoutMs} ms (${last})`)
}

/** `Authorization` header value for basic auth. */
export function basicAuthHeader (auth: BasicAuth): string {
  return 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64')
}
