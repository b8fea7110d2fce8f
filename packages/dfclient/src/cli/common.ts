import { readFile } from 'node:fs/promises'
import { pino, type Logger } from 'pino'
import { z } from 'zod'
import { envName, isDfError, resolveConfig } from '@damselfly/proto'
import { DAEMON_OPTIONS, daemonConfigSchema } from '../config.js'

/** Exit statuses of the command-line tools. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

/**
 * The daemon options a command-line tool shares with the daemon: its supernodes, token and registry
 * map. Read with the daemon's own layering (YAML file < `DAMSELFLY_*` env < flags), so on a node
 * where the daemon's config file or environment is in place (a systemd EnvironmentFile, the DaemonSet's
 * env) the tools need no flags. Other keys in the file are accepted and ignored: the daemon's listen
 * address or data dir must never leak into a short-lived tool (two processes on one cache).
 */
export const sharedConfigSchema = z.object({
  supernode: daemonConfigSchema.shape.supernode,
  token: daemonConfigSchema.shape.token,
  registry: daemonConfigSchema.shape.registry,
  p2pEncrypters: daemonConfigSchema.shape.p2pEncrypters,
  defaultRegistry: daemonConfigSchema.shape.defaultRegistry
})
export type SharedConfig = z.infer<typeof sharedConfigSchema>

/** The same without the supernode requirement (doctor can learn it from the daemon). */
export const sharedOptionalConfigSchema = sharedConfigSchema.extend({ supernode: z.array(z.string()).optional() })

/** Reads `--config` (or `DAMSELFLY_CONFIG`) and resolves `schema` over file < env < flags. */
export async function loadSharedConfig<S extends z.ZodType> (schema: S, flags: Record<string, unknown>): Promise<z.infer<S>> {
  const path = (flags.config as string | undefined) ?? process.env[envName('config')]
  let file: { path: string, text: string } | undefined
  if (path !== undefined && path !== '') {
    try {
      file = { path, text: await readFile(path, 'utf8') }
    } catch (err) {
      throw new UsageError(`invalid configuration:\n  - ${path}: cannot read: ${(err as Error).message}`)
    }
  }
  const picked = Object.fromEntries(Object.entries(flags).filter(([k]) => k in sharedConfigSchema.shape))
  return resolveConfig(schema, DAEMON_OPTIONS, { ...(file === undefined ? {} : { file }), env: process.env, flags: picked })
}

/** A problem with how the tool was called: printed without a stack, exit 2. */
export class UsageError extends Error {}

/** JSON logs on stderr (stdout carries the tool's own output), credentials redacted. */
export function cliLogger (level: string): Logger {
  return pino({
    level,
    base: { name: 'dfclient' },
    redact: { paths: ['authorization', '*.authorization', 'headers.authorization', 'token', '*.token'], censor: '[redacted]' }
  }, pino.destination(2))
}

/** Prints an error the way every tool does and returns the exit status for it. */
export function reportError (tool: string, err: unknown): number {
  if (err instanceof UsageError || (isDfError(err) && err.code === 'DF_ERR_CONFIG_INVALID')) {
    process.stderr.write(`dfclient ${tool}: ${(err as Error).message}\n`)
    return EXIT.usage
  }
  const code = isDfError(err) ? ` [${err.code}]` : ''
  process.stderr.write(`dfclient ${tool}: ${err instanceof Error ? err.message : String(err)}${code}\n`)
  return EXIT.failed
}

/** Collects a repeatable option's values (commander). */
export function repeatable (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}
