import { existsSync } from 'node:fs'
import { get, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, rawHttp, repoRoot, startDfclient, startRegistry, startSupernode, stopAllProcesses,
  type DamselflyProcess, type RawHttpResponse, type Registry
} from '../harness/index.js'
import { gateQueueLimit } from '@damselfly/proto'
import { memoryMiB, pushedBlob, type PushedBlob } from '../harness/faults.js'

// Bad input against both real processes, table-driven (≥100 cases): malformed digests and algorithms,
// `..` and encoded traversal, names and tags past the OCI grammar, unsatisfiable and malformed ranges,
// `ns=` at hosts the mirror must not reach (SSRF), oversized headers and bodies, invalid JSON and wrong
// types on every supernode route (peer API and Harbor's preheat APIs). Each answer must be a 4xx in the
// server's error format (OCI `{"errors":[…]}` at the mirror, `{"error":{code,message}}` at the
// supernode), and both processes must stay alive with flat memory. Then the limits: slow senders are
// cut off, and a request burst beyond the concurrency gate gets 429 with Retry-After.

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('bad-input tests need `npm run build` first')

const OCI_CODES = ['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS']
const HEX = 'a'.repeat(64)
const D = `sha256:${HEX}`
const PEER = '12D3KooWBadPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const JSON_TYPE = { 'content-type': 'application/json' }

interface Case {
  name: string
  method?: string
  path: string | (() => string)
  headers?: Record<string, string>
  body?: string | Buffer
  /** Announce a body of this many bytes but send none: the server must answer from the headers alone. */
  announce?: number
  status: number
  code?: string
}

const blobPath = (name: string, digest: string): string => `/v2/${name}/blobs/${digest}`

/** The mirror: every case answers 4xx in the OCI format (the range cases that RFC 9110 says to ignore answer 200/206). */
function mirrorCases (blob: () => PushedBlob): Case[] {
  const digests: Array<[string, string]> = [
    ['not hex', 'sha256:xyz'], ['63 hex digits', `sha256:${'a'.repeat(63)}`], ['65 hex digits', `sha256:${'a'.repeat(65)}`],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`], ['md5', `md5:${'a'.repeat(32)}`], ['sha1', `sha1:${'a'.repeat(40)}`],
    ['sha384 (unsupported)', `sha384:${'a'.repeat(96)}`], ['blake3', `blake3:${HEX}`], ['no hex', 'sha256:'], ['no algorithm', `:${HEX}`],
    ['no colon', `sha256${HEX}`], ['double colon', `sha256::${HEX}`], ['upper-case algorithm', `SHA256:${HEX}`], ['non-hex letters', `sha256:${'g'.repeat(64)}`],
    ['percent-encoded NUL', `sha256:${'a'.repeat(63)}%00`], ['encoded space', `sha256:%20${HEX}`], ['trailing dot', `${D}.`], ['300 characters', `sha256:${'a'.repeat(293)}`],
    ['sha512 too short', `sha512:${HEX}`], ['encoded colon', `sha256%3A${HEX}`]
  ]
  const names: Array<[string, string]> = [
    ['.. before the name', '/v2/../etc/passwd/blobs/D'], ['.. inside the name', '/v2/bad/../../etc/blobs/D'], ['%2e%2e', '/v2/bad/%2e%2e/%2e%2e/etc/blobs/D'],
    ['%2E%2E upper-case', '/v2/bad/%2E%2E/x/blobs/D'], ['double-encoded %252e', '/v2/bad/%252e%252e/x/blobs/D'], ['..%2f', '/v2/bad/..%2f..%2fetc/blobs/D'],
    ['%2f inside a component', '/v2/bad%2Finput/blobs/D'], ['%5c backslash', '/v2/bad%5c..%5cx/blobs/D'], ['literal backslash', '/v2/bad\\x/blobs/D'],
    ['single dot component', '/v2/./bad/blobs/D'], ['empty component', '/v2/bad//input/blobs/D'], ['leading slash', '/v2//bad/blobs/D'],
    ['NUL in a name', '/v2/bad%00x/blobs/D'], ['overlong UTF-8 dots', '/v2/%c0%ae%c0%ae/x/blobs/D'], ['non-ASCII name', '/v2/b%C3%A4d/blobs/D'],
    ['upper-case name', '/v2/Bad/Input/blobs/D'], ['colon in a name', '/v2/bad:1/x/blobs/D'], ['triple underscore', '/v2/a___b/blobs/D'],
    ['double dot separator', '/v2/a..b/blobs/D'], ['leading dash', '/v2/-a/blobs/D'], ['trailing dash', '/v2/a-/blobs/D'], ['leading underscore', '/v2/_a/blobs/D'],
    ['256-character name', `/v2/${'a'.repeat(256)}/blobs/D`], ['256 characters in components', `/v2/${Array.from({ length: 32 }, () => 'abcdefgh').join('/')}/blobs/D`]
  ]
  const tags = ['-v1', '.v1', 't'.repeat(129), 'v1%00', 'v1%2fx', 'v%201', 'v1+x', 'v1~', 'sha256:nothex', `sha256:${'a'.repeat(10)}`]
  const ns: Array<[string, string, number, string]> = [
    ['cloud metadata', '169.254.169.254', 403, 'DENIED'], ['cloud metadata with port', '169.254.169.254:80', 403, 'DENIED'],
    ['loopback, not configured', '127.0.0.1:1', 403, 'DENIED'], ['localhost', 'localhost:5000', 403, 'DENIED'], ['IPv6 loopback', '[::1]:5000', 403, 'DENIED'],
    ['RFC 1918', '10.0.0.1', 403, 'DENIED'], ['unspecified', '0.0.0.0', 403, 'DENIED'], ['decimal loopback', '2130706433', 403, 'DENIED'],
    ['hex loopback', '0x7f000001', 403, 'DENIED'], ['short loopback', '127.1', 403, 'DENIED'], ['IPv4-mapped loopback', '[::ffff:127.0.0.1]', 403, 'DENIED'],
    ['IPv6 link-local', '[fe80::1]', 403, 'DENIED'], ['CGNAT', '100.64.0.1', 403, 'DENIED'], ['private /16', '192.168.1.1:443', 403, 'DENIED'],
    ['a path', 'evil.example/x', 400, 'NAME_INVALID'], ['userinfo', 'user@evil.example', 400, 'NAME_INVALID'], ['non-numeric port', 'host:port', 400, 'NAME_INVALID'],
    ['NUL', 'a%00b', 400, 'NAME_INVALID'], ['space', 'a%20b', 400, 'NAME_INVALID']
  ]
  const cases: Case[] = [
    ...digests.map(([n, d]): Case => ({ name: `blob digest: ${n}`, path: blobPath('bad/input', d), status: 400, code: 'DIGEST_INVALID' })),
    { name: 'referrers digest: not hex', path: '/v2/bad/input/referrers/sha256:zz', status: 400, code: 'DIGEST_INVALID' },
    ...names.map(([n, p]): Case => ({ name: `name: ${n}`, path: p.replace(/\/D$/, `/${D}`), status: 400, code: 'NAME_INVALID' })),
    ...tags.map((t): Case => ({ name: `manifest reference past the grammar: ${t.slice(0, 20)}`, path: `/v2/bad/input/manifests/${t}`, status: 404, code: 'MANIFEST_UNKNOWN' })),
    ...ns.map(([n, host, status, code]): Case => ({ name: `ns= ${n}`, path: () => `${blobPath('bad/input', blob().digest)}?ns=${encodeURIComponent(host).replace(/%25/g, '%')}`, status, code })),
    { name: 'ns= at a forbidden host on a manifest', path: '/v2/bad/input/manifests/v1?ns=169.254.169.254', status: 403, code: 'DENIED' },
    { name: 'ns= at a forbidden host on /v2/', path: '/v2/?ns=127.0.0.1:2', status: 403, code: 'DENIED' },
    { name: 'range past the end', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=5000000-' }, status: 416, code: 'SIZE_INVALID' },
    { name: 'closed range wholly past the end', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=4194304-4194400' }, status: 416, code: 'SIZE_INVALID' },
    { name: 'range -0', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=-0' }, status: 416, code: 'SIZE_INVALID' },
    { name: 'range end before start', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=10-5' }, status: 416, code: 'SIZE_INVALID' },
    { name: 'range beyond 2^53', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=99999999999999999999-' }, status: 416, code: 'SIZE_INVALID' },
    { name: 'malformed range (ignored: whole blob)', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=abc' }, status: 200 },
    { name: 'multi-range (ignored: whole blob)', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=0-1,5-6' }, status: 200 },
    { name: 'other range unit (ignored)', path: () => blobPath('bad/input', blob().digest), headers: { range: 'items=0-5' }, status: 200 },
    { name: 'range end past the size (clamped)', path: () => blobPath('bad/input', blob().digest), headers: { range: 'bytes=0-999999999' }, status: 206 },
    { name: 'POST a blob', method: 'POST', path: blobPath('bad/input', D), body: 'x', status: 405, code: 'UNSUPPORTED' },
    { name: 'PUT a manifest', method: 'PUT', path: '/v2/bad/input/manifests/v1', headers: JSON_TYPE, body: '{}', status: 405, code: 'UNSUPPORTED' },
    { name: 'DELETE a blob', method: 'DELETE', path: blobPath('bad/input', D), status: 405, code: 'UNSUPPORTED' },
    { name: 'PATCH an upload', method: 'PATCH', path: '/v2/bad/input/blobs/uploads/x', body: 'x', status: 405, code: 'UNSUPPORTED' },
    { name: 'OPTIONS a manifest', method: 'OPTIONS', path: '/v2/bad/input/manifests/v1', status: 405, code: 'UNSUPPORTED' },
    { name: 'body of 300 KiB announced', method: 'POST', path: '/v2/bad/input/manifests/v1', announce: 300 * 1024, status: 413, code: 'SIZE_INVALID' },
    { name: 'body of 20 MiB announced (refused before it is sent)', method: 'PUT', path: blobPath('bad/input', D), announce: 20 * MiB, status: 413, code: 'SIZE_INVALID' },
    { name: 'body of 4 GiB announced', method: 'POST', path: '/v2/bad/input/blobs/uploads/', announce: 4 * 1024 * MiB, status: 413, code: 'SIZE_INVALID' },
    { name: 'one header of 20 KiB', path: '/v2/', headers: { 'x-big': 'a'.repeat(20 * 1024) }, status: 431, code: 'SIZE_INVALID' },
    { name: '1,000 small headers', path: '/v2/', headers: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-h${i}`, 'abcdefghijklmnopqrst'])), status: 431, code: 'SIZE_INVALID' },
    { name: 'unknown route', path: '/nothing/here', status: 404, code: 'UNSUPPORTED' }
  ]
  return cases
}

/** The supernode: every route with invalid JSON and wrong types, plus SSRF targets in task and preheat URLs. */
function supernodeCases (): Case[] {
  const post = (name: string, path: string, body: unknown, status: number, code: string): Case =>
    ({ name, method: 'POST', path, headers: JSON_TYPE, body: typeof body === 'string' ? body : JSON.stringify(body), status, code })
  const blobUrl = (host: string): string => `http://${host}/v2/x/blobs/${D}`
  const harbor = (url: string, extra: Record<string, unknown> = {}): unknown => ({ type: 'preheat', args: { type: 'image', url, headers: {}, scope: '', ...extra } })
  return [
    post('announce: invalid JSON', '/api/v1/peers', '{"peerId":', 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: array', '/api/v1/peers', [1, 2], 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: wrong types', '/api/v1/peers', { peerId: 42, addrs: '/ip4/1.2.3.4/tcp/1', hostname: true }, 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: missing fields', '/api/v1/peers', {}, 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: 17 addresses', '/api/v1/peers', { peerId: PEER, addrs: Array.from({ length: 17 }, (_, i) => `/ip4/127.0.0.1/tcp/${i + 1}`), hostname: 'h' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: 300-character hostname', '/api/v1/peers', { peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'h'.repeat(300) }, 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: peer id not base58', '/api/v1/peers', { peerId: '0OIl', addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'h' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('announce: unknown field', '/api/v1/peers', { peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'h', admin: true }, 400, 'DF_ERR_BAD_REQUEST'),
    { name: 'announce: not JSON', method: 'POST', path: '/api/v1/peers', headers: { 'content-type': 'text/plain' }, body: 'peerId=x', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'heartbeat: bad peer id', method: 'POST', path: '/api/v1/peers/0OIl/heartbeat', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'heartbeat: unknown peer', method: 'POST', path: `/api/v1/peers/${PEER}/heartbeat`, status: 404, code: 'DF_ERR_PEER_UNKNOWN' },
    { name: 'leave: bad peer id', method: 'DELETE', path: '/api/v1/peers/..%2F..%2Fx', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    post('task: invalid JSON', '/api/v1/tasks', '{', 400, 'DF_ERR_BAD_REQUEST'),
    post('task: wrong types', '/api/v1/tasks', { digest: 7, url: ['http://x'] }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: bad digest', '/api/v1/tasks', { digest: 'sha256:nope', url: blobUrl('registry.example') }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: file URL', '/api/v1/tasks', { digest: D, url: 'file:///etc/passwd' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: URL that is not a blob URL', '/api/v1/tasks', { digest: D, url: 'http://registry.example/admin' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: headers of the wrong type', '/api/v1/tasks', { digest: D, url: blobUrl('registry.example'), headers: 'Bearer x' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: 5,000-character URL', '/api/v1/tasks', { digest: D, url: `http://registry.example/v2/${'a'.repeat(5000)}/blobs/${D}` }, 400, 'DF_ERR_BAD_REQUEST'),
    post('task: URL at cloud metadata', '/api/v1/tasks', { digest: D, url: blobUrl('169.254.169.254') }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    post('task: URL at an unconfigured loopback port', '/api/v1/tasks', { digest: D, url: blobUrl('127.0.0.1:1') }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    post('task: URL at IPv6 loopback', '/api/v1/tasks', { digest: D, url: blobUrl('[::1]:5000') }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    post('task: URL at a private address', '/api/v1/tasks', { digest: D, url: blobUrl('10.1.2.3') }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    post('task: URL at localhost', '/api/v1/tasks', { digest: D, url: blobUrl('localhost:5000') }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    { name: 'pieces: bad digest', method: 'GET', path: '/api/v1/tasks/sha256:nope/pieces', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: traversal as digest', method: 'GET', path: '/api/v1/tasks/..%2F..%2Fetc%2Fpasswd/pieces', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: unknown query', method: 'GET', path: `/api/v1/tasks/${D}/pieces?debug=1`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: waitMs over the limit', method: 'GET', path: `/api/v1/tasks/${D}/pieces?since=0&waitMs=999999`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: negative since', method: 'GET', path: `/api/v1/tasks/${D}/pieces?since=-1`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: from not a number', method: 'GET', path: `/api/v1/tasks/${D}/pieces?from=abc`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'pieces: unknown task', method: 'GET', path: `/api/v1/tasks/${D}/pieces`, status: 404, code: 'DF_ERR_TASK_UNKNOWN' },
    post('report: invalid JSON', `/api/v1/tasks/${D}/pieces`, '{"peerId"', 400, 'DF_ERR_BAD_REQUEST'),
    post('report: pieces not an array', `/api/v1/tasks/${D}/pieces`, { peerId: PEER, pieces: 3 }, 400, 'DF_ERR_BAD_REQUEST'),
    post('report: negative index', `/api/v1/tasks/${D}/pieces`, { peerId: PEER, pieces: [-1] }, 400, 'DF_ERR_BAD_REQUEST'),
    post('results: wrong types', `/api/v1/tasks/${D}/piece-results`, { peerId: PEER, results: [{ index: 'a', ok: 'yes' }] }, 400, 'DF_ERR_BAD_REQUEST'),
    post('results: empty list', `/api/v1/tasks/${D}/piece-results`, { peerId: PEER, results: [] }, 400, 'DF_ERR_BAD_REQUEST'),
    { name: 'preheat feed: bad peer id', method: 'GET', path: '/api/v1/peers/0OIl/preheats?waitMs=0', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'preheat feed: waitMs over the limit', method: 'GET', path: `/api/v1/peers/${PEER}/preheats?waitMs=999999`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    post('preheat results: bad job id', `/api/v1/peers/${PEER}/preheats/abc/results`, { results: [] }, 400, 'DF_ERR_BAD_REQUEST'),
    post('preheat results: wrong types', `/api/v1/peers/${PEER}/preheats/1/results`, { results: 'ok' }, 400, 'DF_ERR_BAD_REQUEST'),
    { name: 'allow-list: bad version', method: 'GET', path: '/api/v1/allowed-peers?since=zz', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    post('Harbor jobs: invalid JSON', '/oapi/v1/jobs', '{"type":', 400, 'DF_ERR_BAD_REQUEST'),
    post('Harbor jobs: wrong type', '/oapi/v1/jobs', { type: 'sync', args: {} }, 400, 'DF_ERR_BAD_REQUEST'),
    post('Harbor jobs: args of the wrong type', '/oapi/v1/jobs', { type: 'preheat', args: 'x' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('Harbor jobs: URL not a manifest URL', '/oapi/v1/jobs', harbor('http://registry.example/etc/passwd'), 400, 'DF_ERR_PREHEAT_URL_INVALID'),
    post('Harbor jobs: unknown scope', '/oapi/v1/jobs', harbor('https://registry.example/v2/a/manifests/v1', { scope: 'everyone' }), 400, 'DF_ERR_BAD_REQUEST'),
    post('Harbor jobs: negative timeout', '/oapi/v1/jobs', harbor('https://registry.example/v2/a/manifests/v1', { timeout: -1 }), 400, 'DF_ERR_BAD_REQUEST'),
    post('Harbor jobs: URL at cloud metadata', '/oapi/v1/jobs', harbor('http://169.254.169.254/v2/a/manifests/v1'), 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    post('Harbor jobs: URL at loopback', '/oapi/v1/jobs', harbor('http://127.0.0.1:1/v2/a/manifests/v1'), 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    { name: 'Harbor job status: not a number', method: 'GET', path: '/oapi/v1/jobs/abc', status: 404, code: 'DF_ERR_PREHEAT_JOB_UNKNOWN' },
    { name: 'Harbor job status: unknown', method: 'GET', path: '/oapi/v1/jobs/999999', status: 404, code: 'DF_ERR_PREHEAT_JOB_UNKNOWN' },
    post('legacy preheat: invalid JSON', '/preheats', '{', 400, 'DF_ERR_BAD_REQUEST'),
    post('legacy preheat: wrong types', '/preheats', { type: 'image', url: 5 }, 400, 'DF_ERR_BAD_REQUEST'),
    post('legacy preheat: URL at a private address', '/preheats', { type: 'image', url: 'http://192.168.0.1/v2/a/manifests/v1', headers: {} }, 403, 'DF_ERR_REGISTRY_NOT_ALLOWED'),
    { name: 'legacy preheat status: unknown', method: 'GET', path: '/preheats/zzz', status: 404, code: 'DF_ERR_PREHEAT_JOB_UNKNOWN' },
    post('kraken notification: invalid JSON', '/registry/notifications', '[', 400, 'DF_ERR_BAD_REQUEST'),
    post('kraken notification: events not an array', '/registry/notifications', { Events: 'x' }, 400, 'DF_ERR_BAD_REQUEST'),
    post('kraken notification: target without URL', '/registry/notifications', { Events: [{ Action: 'push', Target: {} }] }, 400, 'DF_ERR_BAD_REQUEST'),
    { name: 'body of 300 KiB announced', method: 'POST', path: '/api/v1/peers', headers: JSON_TYPE, announce: 300 * 1024, status: 413, code: 'DF_ERR_BODY_TOO_LARGE' },
    // Both framings at once (the request-smuggling shape): Node's parser refuses it, in our format.
    { name: 'Content-Length and Transfer-Encoding together', method: 'POST', path: '/api/v1/peers', headers: { ...JSON_TYPE, 'transfer-encoding': 'chunked' }, body: '2\r\n{}\r\n0\r\n\r\n', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'body of 20 MiB announced (refused before it is sent)', method: 'POST', path: '/oapi/v1/jobs', headers: JSON_TYPE, announce: 20 * MiB, status: 413, code: 'DF_ERR_BODY_TOO_LARGE' },
    { name: 'body of 4 GiB announced', method: 'POST', path: '/api/v1/tasks', headers: JSON_TYPE, announce: 4 * 1024 * MiB, status: 413, code: 'DF_ERR_BODY_TOO_LARGE' },
    { name: 'one header of 20 KiB', method: 'GET', path: '/api/v1/allowed-peers', headers: { 'x-big': 'a'.repeat(20 * 1024) }, status: 431, code: 'DF_ERR_BODY_TOO_LARGE' },
    { name: 'unknown route', method: 'GET', path: '/api/v1/nothing', status: 404, code: 'DF_ERR_NOT_FOUND' },
    { name: 'unknown method', method: 'PUT', path: '/api/v1/peers', headers: JSON_TYPE, body: '{}', status: 404, code: 'DF_ERR_NOT_FOUND' }
  ]
}

/** Sends a request's headers only (a body is announced, never sent) and reads the answer. */
async function headersOnly (base: string, method: string, path: string, headers: Record<string, string>): Promise<RawHttpResponse> {
  const url = new URL(base)
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${url.host}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
    })
    let got = ''
    socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
    socket.on('close', () => { resolve(got) })
    socket.on('error', reject)
    setTimeout(() => { socket.destroy() }, 10_000)
  })
  const [head = '', body = ''] = text.split('\r\n\r\n')
  const lines = head.split('\r\n')
  const out: Record<string, string> = {}
  for (const l of lines.slice(1)) { const i = l.indexOf(':'); if (i > 0) out[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim() }
  let json: unknown
  try { json = JSON.parse(body) } catch { json = undefined }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0), headers: out, body: Buffer.from(body, 'latin1'), json }
}

describe.skipIf(!built)('bad input against the real processes', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let supernode: DamselflyProcess
  let df: DamselflyProcess
  let blob: PushedBlob
  const mirror = mirrorCases(() => blob)
  const api = supernodeCases()

  /** Sends one case; resolves with the response (a reset after an early answer still yields it). */
  const send = async (base: string, c: Case): Promise<RawHttpResponse> => {
    const path = typeof c.path === 'function' ? c.path() : c.path
    if (c.announce !== undefined) return await headersOnly(base, c.method ?? 'POST', path, { ...c.headers, 'content-length': String(c.announce) })
    return await rawHttp(base, { method: c.method, path, headers: c.headers, body: c.body, timeoutMs: 30_000 })
  }

  beforeAll(async () => {
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    const registries = [{ host: registry.host, url: registry.url }]
    // Small limits, so the limit tests are quick: 2 s to send a request, 4 concurrent requests at the supernode, 1 at the mirror.
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries, extraArgs: ['--request-timeout', '2s', '--max-concurrent-requests', '4'] })
    cleanup.defer('supernode', supernode.stop)
    df = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, extraArgs: ['--request-timeout', '2s', '--max-concurrent-requests', '1'] })
    cleanup.defer('dfclient', df.stop)
    blob = await pushedBlob(registry, 'bad/input', 'bad-input', 2 * MiB)
    // Cached at the dfclient and known to the supernode, so range cases are answered locally.
    const r = await request(`${df.httpUrl}${blobPath('bad/input', blob.digest)}`)
    await r.body.dump()
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('the table has at least 100 cases', () => {
    expect(mirror.length + api.length).toBeGreaterThanOrEqual(100)
  })

  test.each(mirror)('mirror: $name → $status', async (c) => {
    const r = await send(df.httpUrl, c)
    expect(r.status, r.body.toString('utf8').slice(0, 300)).toBe(c.status)
    if (c.code !== undefined) {
      expect(r.headers['content-type']).toMatch(/^application\/json/)
      expect(r.json?.errors?.[0]?.code, r.body.toString('utf8').slice(0, 300)).toBe(c.code)
      expect(OCI_CODES).toContain(r.json.errors[0].code)
      expect(typeof r.json.errors[0].message).toBe('string')
    }
  })

  test.each(api)('supernode: $name → $status', async (c) => {
    const r = await send(supernode.httpUrl, c)
    expect(r.status, r.body.toString('utf8').slice(0, 300)).toBe(c.status)
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    expect(r.json?.error?.code, r.body.toString('utf8').slice(0, 300)).toBe(c.code)
    expect(typeof r.json.error.message).toBe('string')
  })

  test('both processes are alive, still serve, and their memory stayed flat over three more rounds of everything', async () => {
    const pids = [df.process.pid, supernode.process.pid]
    const before = await Promise.all(pids.map(async (p) => (await memoryMiB(p)).rss))
    for (let round = 0; round < 3; round++) {
      for (const c of mirror) await send(df.httpUrl, c)
      for (const c of api) await send(supernode.httpUrl, c)
    }
    const after = await Promise.all(pids.map(async (p) => (await memoryMiB(p)).rss))
    for (const [i, p] of [df, supernode].entries()) {
      expect(p.process.status, `${p.process.name} still running`).toBeUndefined()
      // Garbage comes and goes; a leak of even a few KiB per request would show over ~500 requests
      // with 20 MiB bodies and 20 KiB headers among them.
      expect(after[i]! - before[i]!, `${p.process.name} RSS ${before[i]!.toFixed(0)} → ${after[i]!.toFixed(0)} MiB`).toBeLessThan(40)
      expect((await rawHttp(p.httpUrl, { path: '/livez' })).status).toBe(200)
    }
    const ok = await request(`${df.httpUrl}${blobPath('bad/input', blob.digest)}`)
    expect(ok.statusCode).toBe(200)
    await ok.body.dump()
  })

  test.each([
    { server: 'mirror', code: 'UNSUPPORTED' },
    { server: 'supernode', code: 'DF_ERR_BAD_REQUEST' }
  ])('$server: a client that sends its headers too slowly is cut off with 408 in the error format', async ({ server, code }) => {
    const url = new URL(server === 'mirror' ? df.httpUrl : supernode.httpUrl)
    const started = Date.now()
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => { socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ') })
      let got = ''
      socket.on('data', (d: Buffer) => { got += d.toString('utf8') })
      socket.on('close', () => { resolve(got) })
      socket.on('error', reject)
      setTimeout(() => { socket.destroy(); reject(new Error(`no answer after 15 s: ${got}`)) }, 15_000)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    expect(answer).toContain(code)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  test('mirror: past its concurrency (1) and waiting room (1,024), a request gets 429 TOOMANYREQUESTS with Retry-After; the queue then drains', async () => {
    // A client that stops reading a blob holds the one slot.
    const big = await pushedBlob(registry, 'bad/input', 'bad-input-big', 24 * MiB)
    const holder = await new Promise<IncomingMessage>((resolve) => {
      get(`${df.httpUrl}${blobPath('bad/input', big.digest)}`, (res) => { res.pause(); resolve(res) })
    })
    const queued = Array.from({ length: gateQueueLimit(1) }, async () => await rawHttp(df.httpUrl, { path: '/v2/', timeoutMs: 120_000 }))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const refused = await rawHttp(df.httpUrl, { path: '/v2/' })
    expect(refused.status).toBe(429)
    expect(refused.headers['retry-after']).toBe('1')
    expect(refused.json?.errors?.[0]?.code).toBe('TOOMANYREQUESTS')
    holder.resume()
    holder.on('data', () => {})
    const drained = await Promise.all(queued)
    for (const r of drained) expect(r.status).toBe(200)
  })

  test('supernode: past its concurrency (4) and waiting room (1,024), a request gets 429 DF_ERR_TOO_MANY_REQUESTS with Retry-After', async () => {
    const abort = new AbortController()
    // Long-polls of a finished task hold their slots for their whole wait (nothing will change).
    const now = await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces`)
    const version = (await now.body.json() as { version: number }).version
    const holders = Array.from({ length: 4 + gateQueueLimit(4) + 8 }, async () => {
      try {
        const r = await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces?since=${version}&waitMs=20000`, { signal: abort.signal })
        return { status: r.statusCode, headers: r.headers, json: await r.body.json().catch(() => undefined) as any }
      } catch {
        return undefined
      }
    })
    // Refusals come at once; the rest hold or wait until aborted.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    abort.abort()
    const results = await Promise.all(holders)
    const refused = results.filter((x) => x?.status === 429)
    expect(refused.length, 'requests beyond concurrency + waiting room were refused').toBeGreaterThan(0)
    expect(refused[0]!.headers['retry-after']).toBe('1')
    expect(refused[0]!.json?.error?.code).toBe('DF_ERR_TOO_MANY_REQUESTS')
    expect((await rawHttp(supernode.httpUrl, { path: '/livez' })).status).toBe(200)
  })
})
