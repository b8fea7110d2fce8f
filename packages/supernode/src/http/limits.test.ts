import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { apiPaths, ALLOWED_PEERS_PATH } from '@damselfly/proto'
import { startTestSupernode } from '../test-support/running-supernode.js'

const PEER = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

describe('supernode HTTP limits and the piece allow-list route', () => {
  it('lists registered peers and itself, with a version that answers "unchanged"', async () => {
    const { sn, stop } = await startTestSupernode()
    try {
      const get = async (q = ''): Promise<any> => await (await fetch(`${sn.httpUrl}${ALLOWED_PEERS_PATH}${q}`)).json()
      const empty = await get()
      expect(empty.peers).toEqual([sn.peerId])
      await fetch(`${sn.httpUrl}${apiPaths.peers}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'a' }) })
      await new Promise(resolve => setTimeout(resolve, 1100)) // the list is rebuilt at most once a second
      const one = await get()
      expect([...one.peers].sort()).toEqual([PEER, sn.peerId].sort())
      expect(one.version).not.toBe(empty.version)
      expect(await get(`?since=${one.version as string}`)).toEqual({ version: one.version })
    } finally {
      await stop()
    }
  })

  it('refuses a body announced over the limit before reading it, and answers Node-level refusals in the API error format', async () => {
    const { sn, stop } = await startTestSupernode({ requestTimeout: '1s' })
    try {
      const url = new URL(sn.httpUrl)
      const raw = async (text: string): Promise<string> => await new Promise((resolve, reject) => {
        const s = connect(Number(url.port), url.hostname, () => { s.write(text) })
        let got = ''
        s.on('data', d => { got += d.toString() })
        s.on('close', () => { resolve(got) })
        s.on('error', reject)
      })
      const big = await raw(`POST ${apiPaths.peers} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{`)
      expect(big).toMatch(/^HTTP\/1\.1 413 /)
      expect(big).toContain('DF_ERR_BODY_TOO_LARGE')
      const slow = await raw('GET /livez HTTP/1.1\r\nHost: x\r\n')
      expect(slow).toMatch(/^HTTP\/1\.1 408 /)
      expect(slow).toContain('"error"')
      const headers = await raw(`GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
      expect(headers).toMatch(/^HTTP\/1\.1 431 /)
    } finally {
      await stop()
    }
  })
})
