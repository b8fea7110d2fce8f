import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestSupernode } from '../test-support/running-supernode.js'

const TOKEN = 'dashboard-test-token'
let base: string
let stop: () => Promise<void>

describe('dashboard routes', () => {
  beforeAll(async () => {
    const t = await startTestSupernode({ token: TOKEN })
    base = t.sn.httpUrl
    stop = t.stop
  })
  afterAll(async () => { await stop() })

  it('serves the page and its files without the token, under a strict CSP', async () => {
    const page = await fetch(`${base}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/)
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await page.text()).toContain('<script src="/dashboard/app.js" defer></script>')
    for (const [path, type] of [['/dashboard/app.js', /javascript/], ['/dashboard/app.css', /^text\/css/]] as const) {
      const r = await fetch(`${base}${path}`)
      expect(r.status, path).toBe(200)
      expect(r.headers.get('content-type')).toMatch(type)
      await r.arrayBuffer()
    }
    expect((await fetch(`${base}/dashboard/nope.js`)).status).toBe(404)
  })

  it('answers the snapshot only with the cluster token', async () => {
    expect((await fetch(`${base}/api/v1/dashboard`)).status).toBe(401)
    expect((await fetch(`${base}/api/v1/dashboard`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    const r = await fetch(`${base}/api/v1/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(r.status).toBe(200)
    expect(r.headers.get('cache-control')).toBe('no-store')
    const s = await r.json() as any
    expect(s.supernode.peerId).toMatch(/^12D3KooW/)
    expect(s.totals).toMatchObject({ peers: 0, tasks: { running: 0, succeeded: 0, failed: 0 } })
    expect(s.totals.bytes).toMatchObject({ upstream: 0, delivered: 0, saved: 0 })
  })

  it('the supernode image ships the page (its files are not compiled into dist/)', () => {
    const dockerfile = readFileSync(new URL('../../../../deploy/docker/supernode.Dockerfile', import.meta.url), 'utf8')
    expect(dockerfile).toContain('packages/supernode/src/dashboard/static')
  })
})
