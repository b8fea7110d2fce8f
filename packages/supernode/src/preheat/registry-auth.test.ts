import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { jwtExpiry, parseChallenge, RegistryAuthorizer, REQUEST_TOKEN_LIFETIME_MS, type TokenFetcher } from './registry-auth.js'
import { basicAuthorization, mergeCredentials, parseDockerConfig } from './registry-credentials.js'
import { createTokenFetcher } from './registry-http.js'

const jwt = (payload: unknown): string => `Bearer eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`
const CRED = { username: 'bob', password: 's3cret' }
const signal = new AbortController().signal

describe('challenges and tokens', () => {
  it('parses a Bearer challenge with quoted and bare params', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' }
    })
    expect(parseChallenge('Basic realm=damselfly')).toEqual({ scheme: 'basic', params: { realm: 'damselfly' } })
    expect(parseChallenge(undefined)).toBeUndefined()
  })
  it('reads a JWT exp without trusting it, and ignores anything else', () => {
    expect(jwtExpiry(jwt({ exp: 1_800_000_000 }))).toBe(1_800_000_000_000)
    expect(jwtExpiry('Bearer opaque-token')).toBeUndefined()
    expect(jwtExpiry(jwt({ sub: 'x' }))).toBeUndefined()
    expect(jwtExpiry('Basic Ym9iOng=')).toBeUndefined()
  })
})

describe('RegistryAuthorizer', () => {
  const tokens: Array<Parameters<TokenFetcher>[0]> = []
  const fetchToken: TokenFetcher = async (req) => { tokens.push(req); return { token: `t${tokens.length}`, expiresInS: 60 } }
  let now = 1_000_000

  it('sends the request token; without a credential its expiry is the deadline', async () => {
    const a = new RegistryAuthorizer({ requestAuthorization: jwt({ exp: 2000 }), repository: 'a/b', fetchToken, now: () => now, receivedAt: now })
    expect(await a.current(signal)).toMatch(/^Bearer eyJ/)
    expect(a.deadline()).toBe(2_000_000)
    const opaque = new RegistryAuthorizer({ requestAuthorization: 'Bearer x', repository: 'a/b', fetchToken, now: () => now, receivedAt: 500 })
    expect(opaque.deadline()).toBe(500 + REQUEST_TOKEN_LIFETIME_MS)
    const renewable = new RegistryAuthorizer({ requestAuthorization: 'Bearer x', credential: CRED, repository: 'a/b', fetchToken, now: () => now, receivedAt: 500 })
    expect(renewable.deadline()).toBeUndefined()
  })

  it('follows a Bearer challenge with the credential, renews the token before it expires, gives up on a fresh one', async () => {
    tokens.length = 0
    const a = new RegistryAuthorizer({ credential: CRED, repository: 'a/b', fetchToken, now: () => now, receivedAt: now })
    expect(await a.current(signal)).toBe(basicAuthorization(CRED))
    expect(await a.challenged('Bearer realm="http://auth/token",service="reg"', signal)).toBe(true)
    expect(tokens[0]).toEqual({ realm: 'http://auth/token', service: 'reg', scope: 'repository:a/b:pull', authorization: basicAuthorization(CRED) })
    expect(await a.current(signal)).toBe('Bearer t1')
    expect(await a.challenged('Bearer realm="http://auth/token"', signal)).toBe(false)
    now += 45_000
    expect(await a.current(signal)).toBe('Bearer t2')
  })

  it('fetches an anonymous token when it has no credential (public images), and Basic on a Basic challenge', async () => {
    tokens.length = 0
    const anon = new RegistryAuthorizer({ repository: 'library/nginx', fetchToken, now: () => now, receivedAt: now })
    expect(await anon.current(signal)).toBeUndefined()
    expect(await anon.challenged('Bearer realm="http://auth/token",scope="repository:library/nginx:pull"', signal)).toBe(true)
    expect(tokens[0]?.authorization).toBeUndefined()
    const basic = new RegistryAuthorizer({ requestAuthorization: 'Bearer expired', credential: CRED, repository: 'a/b', fetchToken, now: () => now, receivedAt: now })
    expect(await basic.challenged('Basic realm="x"', signal)).toBe(true)
    expect(await basic.current(signal)).toBe(basicAuthorization(CRED))
    expect(await basic.challenged('Basic realm="x"', signal)).toBe(false)
    const none = new RegistryAuthorizer({ requestAuthorization: 'Bearer x', repository: 'a/b', fetchToken, now: () => now, receivedAt: now })
    expect(await none.challenged('Basic realm="x"', signal)).toBe(false)
  })
})

describe('the token endpoint adapter', () => {
  it('GETs realm?service&scope with the credential and reads token/expires_in', async () => {
    const seen: Array<{ url: string, headers: IncomingHttpHeaders }> = []
    const server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers })
      if (req.url?.includes('deny') === true) { res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad creds"}]}'); return }
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ access_token: 'abc', expires_in: 300 }))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const fetch = createTokenFetcher()
      expect(await fetch({ realm: `${base}/token`, service: 'reg', scope: 'repository:a/b:pull', authorization: basicAuthorization(CRED) }, signal)).toEqual({ token: 'abc', expiresInS: 300 })
      expect(seen[0]?.url).toBe('/token?service=reg&scope=repository%3Aa%2Fb%3Apull')
      expect(seen[0]?.headers.authorization).toBe(basicAuthorization(CRED))
      await expect(fetch({ realm: `${base}/deny`, scope: 's' }, signal)).rejects.toMatchObject({ code: 'DF_ERR_UPSTREAM_REJECTED', message: expect.stringContaining('UNAUTHORIZED: bad creds') })
    } finally {
      server.close()
    }
  })
})

describe('registry credentials', () => {
  it('reads Docker config.json (auth or username/password, URL keys) and lets config entries win', () => {
    const file = parseDockerConfig(JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') },
        '127.0.0.1:5000': { username: 'u', password: 'p' }
      }
    }), 'config.json')
    expect(file.get('docker.io')).toEqual({ username: 'hub', password: 'pw:with:colons' })
    const merged = mergeCredentials(file, { '127.0.0.1:5000': { username: 'flag', password: 'x' } })
    expect(merged.get('127.0.0.1:5000')?.username).toBe('flag')
  })
  it('reports a bad file without its secrets', () => {
    expect(() => parseDockerConfig('{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}', 'c.json')).toThrow(/c.json: auths\["h"\].auth is not base64/)
    expect(() => parseDockerConfig('nope', 'c.json')).toThrow(/not valid JSON/)
  })
})
