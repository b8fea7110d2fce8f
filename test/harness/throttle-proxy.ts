import { connect, createServer, type Server, type Socket } from 'node:net'

/** A TCP proxy in front of a server, with an adjustable rate limit on the server→client direction. */
export interface ThrottleProxy {
  /** `http://127.0.0.1:PORT` */
  url: string
  /** `127.0.0.1:PORT`, a registry host of its own (credentials and image references are per host). */
  host: string
  port: number
  /** Bytes sent from the target to clients so far. */
  bytesDown: () => number
  /** Limits server→client bytes per second over all connections; `undefined` = unlimited. */
  setRate: (bytesPerSecond: number | undefined) => void
  stop: () => Promise<void>
}

/**
 * Starts a proxy on 127.0.0.1:0 that relays every connection to `target` (`HOST:PORT`). Lets a test
 * slow a real registry down (e.g. to stop a supernode mid-fetch) without touching it. One shared
 * budget: a chunk sent pauses that connection for `chunk / rate` seconds.
 */
export async function startThrottleProxy (target: string, bytesPerSecond?: number): Promise<ThrottleProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))]
  let rate = bytesPerSecond
  let down = 0
  let freeAt = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(port, host)
    sockets.add(client)
    sockets.add(upstream)
    const close = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      down += chunk.length
      if (!client.write(chunk)) {
        upstream.pause()
        client.once('drain', () => { if (rate === undefined) upstream.resume() })
      }
      if (rate !== undefined) {
        const now = Date.now()
        freeAt = Math.max(freeAt, now) + (chunk.length / rate) * 1000
        upstream.pause()
        setTimeout(() => { if (!upstream.destroyed) upstream.resume() }, freeAt - now)
      }
    })
    upstream.on('end', () => { client.end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    url: `http://127.0.0.1:${address.port}`,
    host: `127.0.0.1:${address.port}`,
    port: address.port,
    bytesDown: () => down,
    setRate: (r) => { rate = r },
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
