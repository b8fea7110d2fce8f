import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, chromiumPath, dockerClassicPull, imageBlobs, launchChromium, pushImage, repoRoot, startDfclient,
  startRegistry, startSupernode, stopAllProcesses, testOutputDir, buildTestImage,
  type DamselflyProcess, type Registry, type TestImage
} from '../harness/index.js'

// The supernode dashboard in a real browser (Debian's Chromium via playwright-core): a registry, a
// supernode with a cluster token and two dfclients as real processes. The page is opened before any
// pull; pulls through the dfclients must then show up in it by themselves (live updates): both peers
// holding bytes, the layer's piece map fully published with two holders per piece, bytes delivered.

const TOKEN = 'dashboard-cluster-token'
const POLL_TIMEOUT_MS = 30_000

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('dashboard tests need `npm run build` first')
const browserFound = chromiumPath() !== undefined
if (!browserFound && process.env.CI !== undefined) throw new Error('dashboard tests need chromium: run scripts/install-test-deps.sh')

async function dashboardJson (base: string, token?: string): Promise<{ status: number, json: any }> {
  const r = await request(`${base}/api/v1/dashboard`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const text = await r.body.text()
  return { status: r.statusCode, json: text === '' ? undefined : JSON.parse(text) }
}

describe.skipIf(!built || !browserFound)('supernode dashboard in Chromium', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let image: TestImage
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  let browser: BrowserContext
  let page: Page

  beforeAll(async () => {
    // 24 MiB = 6 pieces of 4 MiB: a piece map with more than one cell.
    image = await buildTestImage({ sizes: [1 * MiB, 24 * MiB], seed: 'dashboard' })
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    await pushImage(registry, 'dash/app', 'v1', image)
    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries, token: TOKEN })
    cleanup.defer('supernode', supernode.stop)
    dfA = await startDfclient({ name: 'dfclient-a', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, token: TOKEN })
    cleanup.defer('dfclient A', dfA.stop)
    dfB = await startDfclient({ name: 'dfclient-b', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, token: TOKEN })
    cleanup.defer('dfclient B', dfB.stop)
    browser = await launchChromium(await cleanup.tempDir('dfly-chromium-'))
    cleanup.defer('chromium', async () => { await browser.close() })
    page = await browser.newPage()
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('the page is public and locked down; its data needs the cluster token', async () => {
    const r = await request(`${supernode.httpUrl}/`)
    expect(r.statusCode).toBe(200)
    expect(r.headers['content-type']).toMatch(/^text\/html/)
    expect(String(r.headers['content-security-policy'])).toContain("script-src 'self'")
    expect(await r.body.text()).toContain('/dashboard/app.js')
    expect((await dashboardJson(supernode.httpUrl)).status).toBe(401)
    expect((await dashboardJson(supernode.httpUrl, 'wrong')).status).toBe(401)
    const ok = await dashboardJson(supernode.httpUrl, TOKEN)
    expect(ok.status).toBe(200)
    expect(ok.json.totals.peers).toBe(2)
  })

  test('asks for the token, then shows the two peers before any pull', async () => {
    await page.goto(supernode.httpUrl)
    await page.getByRole('textbox', { name: 'Cluster token' }).fill(TOKEN)
    await page.getByRole('button', { name: 'View dashboard' }).click()
    await expectEventually(async () => await page.locator('#peers-body tr').count(), 2)
    for (const df of [dfA, dfB]) await page.locator(`#peers-body tr[data-peer-id="${df.peerId}"]`).waitFor()
    expect(await page.locator('#tasks-empty').isVisible()).toBe(true)
    expect(await page.locator('#live-dot').getAttribute('data-state')).toBe('live')
  })

  test('pulls through both dfclients appear live: holdings, a full piece map with 2 holders per piece, bytes delivered', async () => {
    await dockerClassicPull(dfA.httpUrl, 'dash/app', 'v1')
    await dockerClassicPull(dfB.httpUrl, 'dash/app', 'v1')
    const blobs = imageBlobs(image)
    const total = blobs.reduce((n, b) => n + b.size, 0)

    // No reload: the page's own polling must bring every change in.
    for (const blob of blobs) {
      const task = page.locator(`li[data-task-id="${blob.digest}"]`)
      await task.waitFor({ timeout: POLL_TIMEOUT_MS })
      const pieces = Math.ceil(blob.size / (4 * MiB))
      await expectEventually(async () => await task.locator('.piece-map .cell.h2').count(), pieces)
      expect(await task.locator('.badge').textContent()).toBe('succeeded')
      expect(await task.locator('.piece-map').getAttribute('aria-label')).toBe(`Piece map: ${pieces} of ${pieces} pieces published, ${pieces} held by peers`)
    }
    for (const df of [dfA, dfB]) {
      await expectEventually(async () => Number(await page.locator(`#peers-body tr[data-peer-id="${df.peerId}"]`).getAttribute('data-held-bytes')), total)
    }
    // Every piece both peers fetched is reported with its bytes: at least two copies delivered.
    await expectEventually(async () => (await dashboardJson(supernode.httpUrl, TOKEN)).json.totals.bytes.delivered >= 2 * total, true)
    await expectEventually(async () => (await page.locator('#stat-delivered').textContent()) !== '0 B', true)

    const out = await testOutputDir()
    const shot = join(out, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    process.stdout.write(`dashboard screenshot: ${shot}\n`)
  })

  test('responsive: a phone-sized viewport has no horizontal page scroll', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.locator('li.task').first().waitFor()
    // Evaluated in the page: its text is sent to the browser (this file is compiled without DOM types).
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number
    expect(overflow).toBeLessThanOrEqual(0)
    const shot = join(await testOutputDir(), 'dashboard-mobile.png')
    await page.screenshot({ path: shot, fullPage: true })
    process.stdout.write(`dashboard screenshot (phone): ${shot}\n`)
  })
})

/** Polls `read` until it returns `want` (the page refreshes every 2 s). */
async function expectEventually<T> (read: () => Promise<T>, want: T, timeoutMs = POLL_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  while (Date.now() < deadline) {
    last = await read()
    if (last === want) return
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  expect(last).toBe(want)
}
