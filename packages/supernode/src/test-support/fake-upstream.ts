import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Test-only: an in-process upstream registry serving blobs by path, counting GETs. */
export interface FakeUpstream {
  url: (path: string) => string
  requests: Array<{ path: string, headers: IncomingHttpHeaders }>
  close: () => Promise<void>
}

export type Route = (res: ServerResponse, headers: IncomingHttpHeaders) => void

export function blob (size: number): { data: Buffer, digest: string } {
  const data = randomBytes(size)
  return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` }
}

/** Serves `data` with Content-Length in 64 KiB writes, honouring backpressure. */
export function serveBytes (data: Buffer, delayMs = 0): Route {
  return (res) => {
    res.writeHead(200, { 'content-length': String(data.byteLength), 'content-type': 'application/octet-stream' })
    let offset = 0
    const pump = (): void => {
      while (offset < data.byteLength) {
        const chunk = data.subarray(offset, offset + 64 * 1024)
        offset += chunk.byteLength
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end()
    }
    if (delayMs > 0) setTimeout(pump, delayMs)
    else pump()
  }
}

export async function startFakeUpstream (routes: Record<string, Route>): Promise<FakeUpstream> {
  const requests: FakeUpstream['requests'] = []
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/'
    requests.push({ path, headers: req.headers })
    const route = routes[path]
    if (route === undefined) { res.writeHead(404).end(); return }
    route(res, req.headers)
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as AddressInfo).port
  return {
    url: path => `http://127.0.0.1:${port}${path}`,
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
