import { readFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { dfError, ERROR_CATALOGUE, isDfError } from './errors.js'

test('every code is DF_ERR_-prefixed and documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  for (const code of Object.keys(ERROR_CATALOGUE)) {
    expect(code).toMatch(/^DF_ERR_[A-Z0-9_]+$/)
    expect(doc, `${code} missing from docs/errors.md`).toContain(`\`${code}\``)
  }
  const documented = [...doc.matchAll(/`(DF_ERR_[A-Z0-9_]+)`/g)].map(m => m[1])
  for (const code of documented) expect(Object.keys(ERROR_CATALOGUE), `${code} documented but not in the catalogue`).toContain(code)
})

test('dfError carries code, status, details and cause', () => {
  const cause = new Error('socket hang up')
  const err = dfError('DF_ERR_UPSTREAM_REJECTED', 'upstream said 401', { cause, details: { status: 401 } })
  expect(isDfError(err)).toBe(true)
  expect(err.code).toBe('DF_ERR_UPSTREAM_REJECTED')
  expect(err.httpStatus).toBe(502)
  expect(err.details).toEqual({ status: 401 })
  expect(err.cause).toBe(cause)
  expect(isDfError(new Error('plain'))).toBe(false)
  expect(isDfError(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false)
})
