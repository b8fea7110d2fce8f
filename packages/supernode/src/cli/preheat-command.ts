import { readFile } from 'node:fs/promises'
import { Command, Option } from 'commander'
import { request } from 'undici'
import { envName, isDfError, registryBaseUrl } from '@damselfly/proto'
import { loadSupernodeConfig, type SupernodeConfig } from '../config.js'
import { parseImageRef } from './image-ref.js'
import { progressBar, summary, type Progress } from './progress-line.js'

/** Exit status for usage errors (as the daemon's). */
const EXIT_USAGE = 2
const POLL_MS = 500
const SCOPES = ['single_seed_peer', 'all_seed_peers', 'all_peers'] as const

interface JobReply {
  id: number
  state: string
  progress?: Progress
  result?: { job_states?: Array<{ error?: string, results?: Array<{ failure_tasks?: Array<{ url: string, hostname: string, ip: string, description: string }> }> }> } | null
}

class UsageError extends Error {}

/**
 * `supernode preheat IMAGE_REF`: asks a running supernode to preheat an image through its own
 * Dragonfly-compatible API, then follows the job with a progress bar (plain lines when stdout is not
 * a terminal). Reads the supernode's configuration (file, env, flags) for where it listens, the
 * preheat token and the registry map, so on the supernode's host no extra flags are needed.
 */
export function preheatCommand (): Command {
  return new Command('preheat')
    .description('preheat an image into a running supernode (and with --scope all_peers into every following dfclient); exit 0 once it is cached')
    .argument('<IMAGE_REF>', 'image as for docker pull: [host[:port]/]name[:tag][@digest]')
    .addOption(new Option('--platform <P>', 'os/arch[/variant], or "all", for an image index (repeatable; default: the supernode\'s preheatPlatforms)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]))
    .addOption(new Option('--scope <S>', 'where to preheat').choices(SCOPES).default('single_seed_peer'))
    .option('--supernode <URL>', 'supernode base URL (default: http://<its --listen>, 127.0.0.1 for a wildcard)')
    .exitOverride()
    .action(async function (this: Command, imageRef: string) {
      try {
        process.exitCode = await run(imageRef, this)
      } catch (err) {
        process.stderr.write(`supernode preheat: ${err instanceof Error ? err.message : String(err)}\n`)
        process.exitCode = err instanceof UsageError || (isDfError(err) && err.code === 'DF_ERR_CONFIG_INVALID') ? EXIT_USAGE : 1
      }
    })
}

async function run (imageRef: string, cmd: Command): Promise<number> {
  const opts = cmd.opts<{ platform?: string[], scope: string, supernode?: string }>()
  // Options of the supernode itself (--config, --preheat-token, --registry, …) given on this command line.
  const { config: configFlag, platform: _p, scope: _s, supernode: _sn, ...flags } = cmd.optsWithGlobals<Record<string, unknown>>()
  const configPath = (configFlag as string | undefined) ?? process.env[envName('config')]
  const config = loadSupernodeConfig({
    ...(configPath === undefined || configPath === '' ? {} : { file: { path: configPath, text: await readFile(configPath, 'utf8') } }),
    env: process.env,
    flags
  })
  const ref = parseImageRef(imageRef)
  if (typeof ref === 'string') throw new UsageError(ref)
  const url = `${registryBaseUrl(ref.host, new Map(Object.entries(config.registry)))}/v2/${ref.repository}/manifests/${ref.reference}`
  const base = (opts.supernode ?? defaultSupernodeUrl(config)).replace(/\/+$/, '')
  const headers = authHeaders(config)

  const body = {
    type: 'preheat',
    args: { type: 'image', url, scope: opts.scope, ...(opts.platform === undefined ? {} : { platform: opts.platform.join(',') }) },
    scheduler_cluster_ids: null
  }
  const created = await call<JobReply>('POST', `${base}/oapi/v1/jobs`, headers, body)
  const tty = process.stdout.isTTY
  process.stdout.write(`preheat job ${created.id}: ${url} (${opts.scope})\n`)
  let lastLine = ''
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
    const job = await call<JobReply>('GET', `${base}/oapi/v1/jobs/${created.id}`, headers)
    if (job.progress !== undefined) {
      const line = tty ? progressBar(job.progress) : summary(job.progress)
      if (line !== lastLine) process.stdout.write(tty ? `\r${line}` : `${line}\n`)
      lastLine = line
    }
    if (job.state === 'PENDING') continue
    if (tty && lastLine !== '') process.stdout.write('\n')
    const states = job.result?.job_states ?? []
    const failures = states.flatMap(s => s.results ?? []).flatMap(r => r.failure_tasks ?? [])
    for (const f of failures) process.stdout.write(`  failed on ${f.hostname} (${f.ip}): ${f.url}: ${f.description}\n`)
    if (job.state === 'SUCCESS') {
      process.stdout.write(`preheated ${imageRef}${job.progress === undefined ? '' : `: ${summary(job.progress)}`}\n`)
      return 0
    }
    process.stderr.write(`preheat of ${imageRef} failed: ${states.map(s => s.error ?? '').filter(e => e !== '').join('; ') || job.state}\n`)
    return 1
  }
}

function defaultSupernodeUrl (config: SupernodeConfig): string {
  const h = config.listen.host
  const host = h === '0.0.0.0' || h === '::' || h === '' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h
  return `http://${host}:${config.listen.port}`
}

function authHeaders (config: SupernodeConfig): Record<string, string> {
  if (config.preheatToken === undefined) return {}
  return config.preheatAuthHeader === 'authorization' ? { authorization: `Bearer ${config.preheatToken}` } : { [config.preheatAuthHeader]: config.preheatToken }
}

async function call<T> (method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown): Promise<T> {
  let res
  try {
    res = await request(url, {
      method,
      headers: { accept: 'application/json', ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000)
    })
  } catch (err) {
    throw new Error(`cannot reach the supernode at ${new URL(url).origin}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const text = await res.body.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { /* reported below with the status */ }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    const e = (json as { error?: { code?: string, message?: string } } | undefined)?.error
    throw new Error(`${method} ${new URL(url).pathname}: HTTP ${res.statusCode}${e === undefined ? '' : ` ${e.code ?? ''}: ${e.message ?? ''}`}`)
  }
  return json as T
}
