import { createReadStream } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { runCommand, type RunResult } from './processes.js'
import type { BasicAuth } from './registry.js'

export interface RegistriesConfOptions {
  /** Registry host the images are named by, e.g. `127.0.0.1:5000`. */
  host: string
  /** Mirror host:port tried first (e.g. a dfclient's `127.0.0.1:PORT`); omit for direct pulls. */
  mirror?: string
}

/**
 * Writes a v2-format `registries.conf` to `<dir>/registries.conf` mapping `host` (insecure = plain HTTP
 * allowed) to an optional insecure mirror, and returns its path. Pass it to skopeo with the global
 * `--registries-conf FILE` flag (hidden from `skopeo --help` in 1.9.3, but it works; the
 * `CONTAINERS_REGISTRIES_CONF` variable is ignored by skopeo 1.9.3). skopeo silently falls back to the
 * registry itself when the mirror fails, so a test must check the mirror was really used.
 */
export async function writeRegistriesConf (dir: string, opts: RegistriesConfOptions): Promise<string> {
  const lines = [
    'unqualified-search-registries = []',
    '',
    '[[registry]]',
    `prefix = "${opts.host}"`,
    `location = "${opts.host}"`,
    'insecure = true'
  ]
  if (opts.mirror !== undefined) {
    lines.push('', '[[registry.mirror]]', `location = "${opts.mirror}"`, 'insecure = true')
  }
  const path = join(dir, 'registries.conf')
  await writeFile(path, lines.join('\n') + '\n')
  return path
}

export interface SkopeoCopyOptions {
  /** Source reference without transport, e.g. `127.0.0.1:5000/test/img:v1`. */
  src: string
  /** Destination with transport: `oci:<dir>:<tag>` or `dir:<dir>`. */
  dest: string
  /** Path from {@link writeRegistriesConf}; without it the system registries.conf applies. */
  registriesConf?: string
  creds?: BasicAuth
  /** `--all` (every platform of an index) */
  all?: boolean
  /** Private directory for skopeo's temp files (big blobs are staged there). */
  tmpDir?: string
  extraArgs?: string[]
  /** default 120 s */
  timeoutMs?: number
}

/**
 * Runs `skopeo [--registries-conf FILE] --insecure-policy copy --src-tls-verify=false --retry-times 0
 * (--src-creds u:p | --src-no-creds) docker://SRC DEST` (no policy.json needed) and returns its output
 * and exit code; does not throw on failure.
 */
export async function skopeoCopy (opts: SkopeoCopyOptions): Promise<RunResult> {
  const args = ['--insecure-policy']
  if (opts.registriesConf !== undefined) args.push('--registries-conf', opts.registriesConf)
  if (opts.tmpDir !== undefined) args.push('--tmpdir', opts.tmpDir)
  args.push('copy', '--src-tls-verify=false', '--retry-times', '0')
  if (opts.creds !== undefined) args.push('--src-creds', `${opts.creds.username}:${opts.creds.password}`)
  else args.push('--src-no-creds')
  if (opts.all === true) args.push('--all')
  args.push(...(opts.extraArgs ?? []), `docker://${opts.src}`, opts.dest)
  return await runCommand('skopeo', args, { timeoutMs: opts.timeoutMs ?? 120_000 })
}

async function fileDigest (path: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(path), h)
  return 'sha256:' + h.digest('hex')
}

/**
 * Checks every blob of an OCI layout (`blobs/sha256/<hex>`) or a skopeo `dir:` directory (files named
 * by hex, plus `manifest.json`) against its name. Returns the verified digests; throws on a mismatch.
 * For `dir:` the manifest's config and layers must all be present.
 */
export async function verifyImageDir (dir: string): Promise<string[]> {
  const ok: string[] = []
  const names = await readdir(dir)
  const isLayout = names.includes('oci-layout')
  const blobDir = isLayout ? join(dir, 'blobs', 'sha256') : dir
  for (const name of await readdir(blobDir)) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue
    const got = await fileDigest(join(blobDir, name))
    if (got !== `sha256:${name}`) throw new Error(`${join(blobDir, name)}: content digest is ${got}`)
    ok.push(got)
  }
  if (!isLayout) {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { config?: { digest: string }, layers?: Array<{ digest: string }> }
    for (const d of [manifest.config, ...(manifest.layers ?? [])]) {
      if (d !== undefined && !ok.includes(d.digest)) throw new Error(`${dir}: blob ${d.digest} from manifest.json is missing`)
    }
  }
  return ok
}
