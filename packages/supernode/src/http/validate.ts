import type { z } from 'zod'
import { badRequestFrom } from './error-handler.js'

/** Parses `value` with `schema`, throwing DF_ERR_BAD_REQUEST (every issue listed) on failure. */
export function validate<S extends z.ZodType> (schema: S, value: unknown, where: 'body' | 'query' | 'params'): z.infer<S> {
  const r = schema.safeParse(value)
  if (!r.success) throw badRequestFrom(r.error, where)
  return r.data
}
