import { describe, expect, it } from 'vitest'
import { AccessChecker, type AccessQuestion, type AccessResult } from './access-check.js'

function fakeUpstream (answer: (headers: Record<string, unknown>) => number): { request: any, heads: Array<Record<string, unknown>> } {
  const heads: Array<Record<string, unknown>> = []
  return {
    heads,
    request: async (_method: string, _url: string, headers: Record<string, unknown>) => {
      heads.push(headers)
      await new Promise(resolve => setTimeout(resolve, 5))
      return { statusCode: answer(headers), body: { dump: async () => {} } }
    }
  }
}

const q = (over: Partial<AccessQuestion> = {}): AccessQuestion => ({ url: 'https://r/v2/a/blobs/sha256:x', registry: 'r', repository: 'a', digest: 'sha256:x', authorization: undefined, headers: { 'user-agent': 'containerd' }, ...over })

describe('AccessChecker', () => {
  it('grants on 2xx/3xx, caches the grant per credential, registry, repository and digest, and shares one HEAD between concurrent callers', async () => {
    const up = fakeUpstream(h => h.authorization === 'Basic good' ? 200 : 401)
    let t = 0
    const results: AccessResult[] = []
    const checker = new AccessChecker({ upstream: up, ttlMs: 1000, now: () => t, onResult: r => results.push(r) })
    const signal = new AbortController().signal
    const asks = await Promise.all(Array.from({ length: 5 }, async () => await checker.allowed(q({ authorization: 'Basic good' }), signal)))
    expect(asks).toEqual([true, true, true, true, true])
    expect(up.heads).toHaveLength(1)
    expect(up.heads[0]).toMatchObject({ authorization: 'Basic good', accept: '*/*', 'user-agent': 'containerd' })
    expect(await checker.allowed(q({ authorization: 'Basic good' }), signal)).toBe(true)
    expect(up.heads).toHaveLength(1)
    // Another credential, digest or repository is a new question.
    expect(await checker.allowed(q({ authorization: 'Basic bad' }), signal)).toBe(false)
    expect(await checker.allowed(q({ authorization: 'Basic good', digest: 'sha256:y' }), signal)).toBe(true)
    expect(await checker.allowed(q({ authorization: 'Basic good', repository: 'b' }), signal)).toBe(true)
    expect(await checker.allowed(q(), signal)).toBe(false)
    expect(up.heads).toHaveLength(5)
    // Denials are never cached; grants expire.
    expect(await checker.allowed(q({ authorization: 'Basic bad' }), signal)).toBe(false)
    expect(up.heads).toHaveLength(6)
    t = 1001
    expect(await checker.allowed(q({ authorization: 'Basic good' }), signal)).toBe(true)
    expect(up.heads).toHaveLength(7)
    expect(results).toContain('cached')
    expect(results).toContain('denied')
  })

  it('treats redirects as grants, 5xx and network errors as no proof, and never sends a Range', async () => {
    const signal = new AbortController().signal
    const redirect = new AccessChecker({ upstream: fakeUpstream(() => 307), ttlMs: 0 })
    expect(await redirect.allowed(q(), signal)).toBe(true)
    const down = new AccessChecker({ upstream: fakeUpstream(() => 503), ttlMs: 1000 })
    expect(await down.allowed(q(), signal)).toBe(false)
    const broken = new AccessChecker({ upstream: { request: async () => { throw new Error('ECONNREFUSED') } } as any, ttlMs: 1000 })
    expect(await broken.allowed(q(), signal)).toBe(false)
    const up = fakeUpstream(() => 200)
    await new AccessChecker({ upstream: up, ttlMs: 0 }).allowed(q({ headers: { range: 'bytes=0-1' } }), signal)
    expect(up.heads[0]).not.toHaveProperty('range')
  })

  it('keeps at most maxEntries grants', async () => {
    const up = fakeUpstream(() => 200)
    const checker = new AccessChecker({ upstream: up, ttlMs: 60_000, maxEntries: 2 })
    const signal = new AbortController().signal
    for (const d of ['a', 'b', 'c']) await checker.allowed(q({ digest: d }), signal)
    await checker.allowed(q({ digest: 'a' }), signal)
    expect(up.heads).toHaveLength(4)
  })
})
