#!/usr/bin/env node
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULTS } from './manifests.js'
import { renderAll } from './render.js'

/**
 * Writes deploy/kubernetes from the typed objects; with `--check`, writes nothing and exits 1 when a
 * file differs (what CI runs, so the committed YAML never drifts from deploy/src).
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'kubernetes')
const check = process.argv.includes('--check')
let stale = 0
for (const file of renderAll(DEFAULTS)) {
  const path = join(root, file.path)
  const current = await readFile(path, 'utf8').catch(() => undefined)
  if (current === file.text) continue
  if (check) {
    process.stderr.write(`out of date: deploy/kubernetes/${file.path}\n`)
    stale++
    continue
  }
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, file.text)
  process.stdout.write(`wrote deploy/kubernetes/${file.path}\n`)
}
if (stale > 0) {
  process.stderr.write('run `npm run deploy:generate` and commit the result\n')
  process.exit(1)
}
