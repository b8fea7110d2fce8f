import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p, type Libp2p } from 'libp2p'

export type EncrypterName = 'tls' | 'noise'

export interface P2pNodeInit {
  keyPath: string
  listen: readonly string[]
  announce: readonly string[]
  encrypters: readonly EncrypterName[]
}

/**
 * Loads the persisted Ed25519 peer key, creating it (mode 0600) on first start, so the PeerId is
 * stable across restarts and the supernode's holdings for this peer stay valid.
 */
export async function loadOrCreateKey (path: string): Promise<PrivateKey> {
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

/**
 * Creates (not starts) the libp2p node: TCP, the configured encrypters in preference order, yamux.
 * Connection-manager limits are raised because a whole cluster may dial one node at once, often from
 * one NAT address (the default 5 inbound connections per second per IP would refuse them).
 */
export async function createP2pNode (init: P2pNodeInit): Promise<Libp2p> {
  const privateKey = await loadOrCreateKey(init.keyPath)
  return await createLibp2p({
    privateKey,
    start: false,
    addresses: {
      listen: [...init.listen],
      ...(init.announce.length > 0 ? { announce: [...init.announce] } : {})
    },
    transports: [tcp()],
    connectionEncrypters: init.encrypters.map(e => e === 'tls' ? tls() : noise()),
    streamMuxers: [yamux()],
    connectionManager: {
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 100,
      maxConnections: 1000
    },
    connectionMonitor: { enabled: false }
  })
}
