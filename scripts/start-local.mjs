// `npm start`: one supernode and one dfclient on this machine, with embedded LevelDB state under
// ./.damselfly. Extra settings come from DAMSELFLY_* environment variables (CONTRACTS.md), which both
// binaries read — for example DAMSELFLY_REGISTRY="127.0.0.1:5000=http://127.0.0.1:5000".
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const state = process.env.DAMSELFLY_LOCAL_STATE ?? join(root, '.damselfly')
const supernodeUrl = 'http://127.0.0.1:8002'
mkdirSync(state, { recursive: true })

const children = []
function start (name, args) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: process.env })
  children.push(child)
  child.on('exit', (code, signal) => {
    console.error(`${name} exited (${signal ?? code}); stopping the stack`)
    stop(code ?? 1)
  })
  return child
}

let stopping = false
function stop (code) {
  if (stopping) return
  stopping = true
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  setTimeout(() => process.exit(code), 5000).unref()
  Promise.all(children.map(c => c.exitCode === null ? new Promise(resolve => c.once('exit', resolve)) : null)).then(() => process.exit(code))
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))

start('supernode', [join(root, 'packages/supernode/dist/main.js'),
  '--listen', '127.0.0.1:8002', '--p2p-listen', '/ip4/127.0.0.1/tcp/8003', '--data-dir', join(state, 'supernode')])
start('dfclient', [join(root, 'packages/dfclient/dist/main.js'), 'daemon',
  '--supernode', supernodeUrl, '--listen', '127.0.0.1:65001', '--p2p-listen', '/ip4/127.0.0.1/tcp/65002', '--data-dir', join(state, 'dfclient')])
console.error(`Damselfly: supernode ${supernodeUrl}, mirror http://127.0.0.1:65001 (Ctrl-C stops both)`)
