import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import { repoRoot } from './binaries.js'

/**
 * Debian's Chromium, driven by playwright-core (no browser download works here: TESTBENCH.md).
 * `$CHROMIUM_PATH` overrides the path.
 */
export function chromiumPath (): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => p !== undefined && p !== '')
  return candidates.find((p) => existsSync(p))
}

/**
 * The flags TESTBENCH.md found necessary as root on the build machines: no sandbox (root), no GPU,
 * and nothing that reaches outside hosts (background networking, component updates, sync, QUIC).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'
]

/**
 * Starts headless Chromium with a fresh profile in `userDataDir` (a private temp dir). Close the
 * returned context to stop the browser.
 */
export async function launchChromium (userDataDir: string, viewport = { width: 1440, height: 1000 }): Promise<BrowserContext> {
  const executablePath = chromiumPath()
  if (executablePath === undefined) throw new Error('chromium not found: run scripts/install-test-deps.sh (apt-get install chromium) or set CHROMIUM_PATH')
  // Reduced motion: pages that honour it skip their transitions, so a screenshot shows the final state.
  return await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args: [...CHROMIUM_ARGS], viewport, reducedMotion: 'reduce' })
}

/**
 * Where tests leave artifacts for people to look at (screenshots): `$DAMSELFLY_TEST_OUTPUT`, else
 * `test/output/` in the repository (git-ignored). Created on demand.
 */
export async function testOutputDir (): Promise<string> {
  const dir = process.env.DAMSELFLY_TEST_OUTPUT ?? join(repoRoot(), 'test', 'output')
  await mkdir(dir, { recursive: true })
  return dir
}
