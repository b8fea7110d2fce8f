import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** What the proxy does to a matching request instead of (or while) relaying it. */
export type Fault =
  /** Answer this status with a plain-text body (as a load balancer in front of a registry would). */
  | { kind: 'status', status: number }
  /** Relay the response, but destroy the connection after `afterBytes` body bytes. */
  | { kind: 'reset', afterBytes: number }
  /** Relay the response, but stop sending (connection left open) after `afterBytes` body bytes. */
  | { kind: 'stall', afterBytes: number }

export interface FaultRule {
  /** Matched against the request path (e.g. a blob digest). */
  match: (method: string, path: string) => boolean
  fault: Fault
  /** How many matching requests get the fault; default every one. */
  times?: number
}

export interface ProxiedRequest {
  method: string
  path: string
  range: string | undefined
  /** What the client got: the status relayed or injected, and the fault applied if any. */
  status: number
  fault: Fault['kind'] | undefined
}

/** An HTTP proxy in front of a registry that injects 5xx answers, resets and stalls on chosen requests. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT` */
  url: string
  /** `127.0.0.1:PORT`: a registry host of its own for `--registry HOST=URL`. */
  host: string
  requests: ProxiedRequest[]
  /** Adds a rule (rules are tried in the order added; a rule whose `times` ran out is skipped). */
  add: (rule: FaultRule) => void
  clear: () => void
  stop: () => Promise<void>
}

/**
 * Starts a fault-injecting HTTP proxy on 127.0.0.1:0 relaying to `target` (`http://HOST:PORT`). Real
 * bytes come from the real registry; only the rules' requests are disturbed, so a test can make an
 * upstream answer 503, reset mid-blob or stall, and count what the Damselfly processes did about it.
 */
export async function startFaultProxy (target: string): Promise<FaultProxy> {
  const to = new URL(target)
  const rules: Array<FaultRule & { left: number }> = []
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/'
    const method = req.method ?? 'GET'
    const rule = rules.find(r => r.left > 0 && r.match(method, path))
    if (rule !== undefined) rule.left--
    const record: ProxiedRequest = { method, path, range: req.headers.range, status: 0, fault: rule?.fault.kind }
    requests.push(record)
    if (rule?.fault.kind === 'status') {
      record.status = rule.fault.status
      res.writeHead(rule.fault.status, { 'content-type': 'text/html' }).end('<html><body>Service Unavailable</body></html>')
      return
    }
    relay(req, res, to, record, rule?.fault)
  })
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    add: (rule) => { rules.push({ ...rule, left: rule.times ?? Infinity }) },
    clear: () => { rules.length = 0 },
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

function relay (req: IncomingMessage, res: ServerResponse, to: URL, record: ProxiedRequest, fault: Fault | undefined): void {
  const headers = { ...req.headers, host: to.host }
  const out = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (up) => {
    record.status = up.statusCode ?? 0
    res.writeHead(up.statusCode ?? 502, up.headers)
    if (fault === undefined || fault.kind === 'status') { up.pipe(res); return }
    let sent = 0
    up.on('data', (chunk: Buffer) => {
      if (sent >= fault.afterBytes) return
      const part = chunk.subarray(0, fault.afterBytes - sent)
      sent += part.length
      res.write(part)
      if (sent < fault.afterBytes) return
      up.destroy()
      // A stall keeps the connection open and silent; the client's own timeout must end it.
      if (fault.kind === 'reset') setImmediate(() => { res.socket?.destroy() })
    })
    up.on('end', () => { if (sent < fault.afterBytes) res.end() })
  })
  out.on('error', () => { res.destroy() })
  req.pipe(out)
}
