import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { dfError } from '../errors.js'

/**
 * One configuration option as operators see it: a camelCase YAML key, a `--kebab-case` flag and a
 * `DAMSELFLY_UPPER_SNAKE` environment variable, all derived from `key` so the three cannot drift
 * (CONTRACTS.md). Values are strings (or string lists) until the binary's zod schema coerces them.
 */
export interface OptionSpec {
  key: string
  /** Placeholder in --help (`DIR`, `HOST:PORT`); absent for on/off switches. */
  arg?: string
  description: string
  /** List option: the flag repeats, the env var is comma-separated, YAML takes an array. */
  repeatable?: boolean
  /** The default as shown in --help. */
  defaultText?: string
}

export function flagName (key: string): string {
  return `--${key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)}`
}

export function envName (key: string): string {
  return `DAMSELFLY_${key.replace(/[A-Z]/g, c => `_${c}`).toUpperCase()}`
}

/** The raw inputs, already read by the binary (proto does no I/O). */
export interface ConfigSources {
  file?: { path: string, text: string }
  env: Readonly<Record<string, string | undefined>>
  /** Flag values by config key, as the command-line parser produced them. */
  flags: Readonly<Record<string, unknown>>
}

/**
 * Merges default < file < env < flags, validates once with `schema`, and returns a deep-frozen
 * result. Unknown file keys and every schema failure are collected and thrown together as one
 * DF_ERR_CONFIG_INVALID whose message lists each problem with where the value came from.
 */
export function resolveConfig<S extends z.ZodType> (schema: S, specs: readonly OptionSpec[], sources: ConfigSources): z.infer<S> {
  const problems: string[] = []
  const merged: Record<string, unknown> = {}
  const origin: Record<string, string> = {}
  const known = new Map(specs.map(s => [s.key, s]))

  if (sources.file !== undefined) {
    let doc: unknown
    try {
      doc = parseYaml(sources.file.text)
    } catch (err) {
      problems.push(`${sources.file.path}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`)
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) {
        problems.push(`${sources.file.path}: must be a mapping of option keys`)
      } else {
        for (const [key, value] of Object.entries(doc)) {
          if (!known.has(key) || key === 'config') {
            problems.push(`${sources.file.path}: ${key}: unknown key`)
            continue
          }
          merged[key] = value
          origin[key] = `${sources.file.path}: ${key}`
        }
      }
    }
  }

  for (const spec of specs) {
    const name = envName(spec.key)
    const raw = sources.env[name]
    if (raw === undefined || raw === '') continue
    merged[spec.key] = spec.repeatable === true ? raw.split(',').map(s => s.trim()).filter(s => s !== '') : raw
    origin[spec.key] = `env ${name}`
  }

  for (const [key, value] of Object.entries(sources.flags)) {
    if (value === undefined) continue
    if (Array.isArray(value) && value.length === 0) continue
    merged[key] = value
    origin[key] = `flag ${flagName(key)}`
  }
  delete merged.config

  const result = schema.safeParse(merged)
  if (!result.success) {
    for (const issue of result.error.issues) {
      const top = String(issue.path[0] ?? '')
      const where = origin[top] ?? (top === '' ? 'config' : `${top} (default)`)
      const sub = issue.path.slice(1).map(p => `[${String(p)}]`).join('')
      problems.push(`${where}${sub}: ${issue.message}`)
    }
  }
  if (problems.length > 0) {
    throw dfError('DF_ERR_CONFIG_INVALID', `invalid configuration:\n${problems.map(p => `  - ${p}`).join('\n')}`, { details: { problems } })
  }
  return deepFreeze(result.data as z.infer<S>)
}

export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    if (value instanceof Map) {
      for (const v of value.values()) deepFreeze(v)
    } else {
      for (const v of Object.values(value)) deepFreeze(v)
    }
  }
  return value
}
