import { createServer } from 'node:net'

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it back, close).
 * Another process may grab it before the caller binds it; callers that can bind port 0 themselves
 * should, and the others retry via {@link withFreePort}.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      if (addr === null || typeof addr === 'string') {
        srv.close()
        reject(new Error('could not read back an ephemeral port'))
        return
      }
      srv.close(() => { resolve(addr.port) })
    })
  })
}

/**
 * Calls `start(port)` with a fresh free port, retrying up to `attempts` times when it fails with
 * an error whose message or code mentions EADDRINUSE (the port was taken between probe and bind).
 */
export async function withFreePort<T> (start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  let last: unknown
  for (let i = 0; i < attempts; i++) {
    const port = await freePort()
    try {
      return await start(port)
    } catch (err) {
      last = err
      if (!isAddrInUse(err)) throw err
    }
  }
  throw new Error(`no free port after ${attempts} attempts`, { cause: last })
}

function isAddrInUse (err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined
  return e?.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(e?.message ?? '')
}
