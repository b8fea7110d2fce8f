import type { Dispatcher } from 'undici'
import { dfError, parseContentRange, sleep } from '@damselfly/proto'

export { RETRY_STATUSES, retryDelayMs, sleep } from '@damselfly/proto'

/** Times a broken-off body is continued with a Range request before the error stands. */
export const MAX_RESUMES = 3

/** `[start, end]` (inclusive) that a 200 (Content-Length) or 206 (Content-Range) body carries. */
export function bodySpan (res: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers'>): { start: number, end: number } | undefined {
  const one = (name: string): string | undefined => { const v = res.headers[name]; return Array.isArray(v) ? v[0] : v }
  if (res.statusCode === 206) {
    const r = parseContentRange(one('content-range'))
    return r === undefined ? undefined : { start: r.start, end: r.end }
  }
  const length = one('content-length')
  if (res.statusCode !== 200 || length === undefined || !/^\d+$/.test(length)) return undefined
  return { start: 0, end: Number(length) - 1 }
}

/**
 * The body of `first`, continued after a reset, a stall (undici's body timeout) or an early end:
 * up to `MAX_RESUMES` times it asks `reopen("bytes=<offset>-<end>")` and carries on if the answer is
 * the 206 for exactly that offset; otherwise the original error stands. Never yields a byte twice or
 * out of place, and never ends short: a body it cannot complete ends with an error.
 */
export async function * resumableBody (first: Dispatcher.ResponseData, o: { signal: AbortSignal, delayMs: number, reopen: (range: string) => Promise<Dispatcher.ResponseData> }): AsyncGenerator<Uint8Array> {
  const span = bodySpan(first)
  if (span === undefined) { yield * first.body; return }
  let offset = span.start
  let body: AsyncIterable<Uint8Array> = first.body
  for (let resumes = 0; ; resumes++) {
    let failure: unknown
    try {
      for await (const chunk of body) {
        const c = chunk as Uint8Array
        // Too many bytes is not a transient failure: no retry repairs it.
        if (offset + c.byteLength > span.end + 1) throw Object.assign(dfError('DF_ERR_SIZE_MISMATCH', `upstream sent more than bytes ${span.start}-${span.end}`), { final: true })
        offset += c.byteLength
        yield c
      }
      if (offset === span.end + 1) return
      failure = dfError('DF_ERR_SIZE_MISMATCH', `upstream body ended at byte ${offset} of ${span.end + 1}`)
    } catch (err) {
      if (o.signal.aborted || (err as { final?: boolean }).final === true) throw err
      failure = err
    }
    if (resumes >= MAX_RESUMES) throw failure
    await sleep(o.delayMs * 2 ** resumes, o.signal)
    let next: Dispatcher.ResponseData
    try {
      next = await o.reopen(`bytes=${offset}-${span.end}`)
    } catch {
      throw failure
    }
    const got = bodySpan(next)
    if (next.statusCode !== 206 || got?.start !== offset) {
      await next.body.dump().catch(() => undefined)
      throw failure
    }
    body = next.body
  }
}
