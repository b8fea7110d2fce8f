import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { supernodeConfig, type SupernodeConfigInput } from '../config.js'
import { createSupernode, type Supernode, type SupernodeComponents } from '../supernode.js'

/** Test-only: a started supernode on ephemeral loopback ports with a temp data dir. */
export async function startTestSupernode (input: Partial<SupernodeConfigInput> = {}, components: Partial<SupernodeComponents> = {}): Promise<{ sn: Supernode, dataDir: string, stop: () => Promise<void> }> {
  // A caller-provided data dir (restart tests) is the caller's to remove.
  const owned = input.dataDir === undefined
  const dataDir = input.dataDir ?? await mkdtemp(join(tmpdir(), 'sn-test-'))
  const config = supernodeConfig({ listen: '127.0.0.1:0', p2pListen: ['/ip4/127.0.0.1/tcp/0'], logLevel: 'silent', ...input, dataDir })
  const sn = createSupernode(config, { logger: pino({ level: 'silent' }), ...components })
  await sn.start()
  return {
    sn,
    dataDir,
    stop: async () => {
      await sn.stop()
      if (owned) await rm(dataDir, { recursive: true, force: true })
    }
  }
}
