import { createHash } from 'node:crypto'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { dfError } from '@damselfly/proto'
import type { PreheatJob } from './job.js'
import { MemoryPreheatJobStore } from './memory-job-store.js'
import type { BlobSeeder, ManifestFetcher, PreheatJobStore } from './ports.js'
import { PreheatService, type PreheatRequest } from './preheat-service.js'
import type { RegistryCredential } from './registry-credentials.js'

const BASE = 'http://reg.test:5000'
const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v))

function imageManifest (blobs: string[]): { body: Uint8Array, digest: string } {
  const body = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: sha(blobs[0]!), size: 1 }, layers: blobs.slice(1).map(b => ({ digest: sha(b), size: 100 })) })
  return { body, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` }
}

/** A seed whose blobs finish when told to (or at once), recording what it was asked. */
class FakeSeeder implements BlobSeeder {
  readonly registered: Array<{ digest: string, authorization: string | undefined }> = []
  inFlight = 0
  maxInFlight = 0
  hold = false
  readonly #release = new Set<() => void>()
  refuse: (digest: string, authorization: string | undefined) => Error | undefined = () => undefined
  failSettle = new Set<string>()

  async register (req: { digest: string, authorization?: string | undefined }): Promise<void> {
    this.registered.push({ digest: req.digest, authorization: req.authorization })
    const err = this.refuse(req.digest, req.authorization)
    if (err !== undefined) throw err
  }

  async settled (digest: string, signal: AbortSignal): Promise<void> {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      if (this.hold) {
        await new Promise<void>(resolve => {
          const done = (): void => { this.#release.delete(done); resolve() }
          this.#release.add(done)
          signal.addEventListener('abort', done, { once: true })
        })
      } else {
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      signal.throwIfAborted()
      if (this.failSettle.has(digest)) throw dfError('DF_ERR_TASK_FAILED', 'digest mismatch')
    } finally {
      this.inFlight--
    }
  }

  releaseAll (): void { this.hold = false; for (const r of [...this.#release]) r() }
  async bytesHeld (): Promise<number> { return 0 }
}

const manifests = new Map<string, { body: Uint8Array, contentType?: string } | Error>()
const fetched: Array<{ url: string, headers: Record<string, string> }> = []
const fetchManifest: ManifestFetcher = async (url, headers) => {
  fetched.push({ url, headers: { ...headers } })
  const m = manifests.get(url)
  if (m === undefined) throw dfError('DF_ERR_UPSTREAM_REJECTED', `registry answered 404 to GET ${new URL(url).pathname}: MANIFEST_UNKNOWN: manifest unknown`, { details: { status: 404 } })
  if (m instanceof Error) throw m
  return { body: m.body, contentType: m.contentType }
}

const services: PreheatService[] = []
function service (opts: { store?: PreheatJobStore, seeder?: FakeSeeder, credentials?: Map<string, RegistryCredential>, timeoutMs?: number } = {}): { svc: PreheatService, store: PreheatJobStore, seeder: FakeSeeder } {
  const store = opts.store ?? new MemoryPreheatJobStore()
  const seeder = opts.seeder ?? new FakeSeeder()
  const svc = new PreheatService({
    store,
    seeder,
    fetchManifest,
    fetchToken: async () => ({ token: 'tok' }),
    credentials: () => opts.credentials ?? new Map(),
    defaults: { platforms: ['linux/amd64'], concurrency: 2, timeoutMs: opts.timeoutMs ?? 60_000 },
    logger: pino({ level: 'silent' })
  })
  services.push(svc)
  return { svc, store, seeder }
}

async function finished (svc: PreheatService, id: number): Promise<PreheatJob> {
  for (let i = 0; i < 400; i++) {
    const job = svc.get(id)
    if (job?.state === 'succeeded' || job?.state === 'failed') return job
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`job ${id} did not finish: ${JSON.stringify(svc.get(id))}`)
}

const request = (over: Partial<PreheatRequest> = {}): PreheatRequest => ({ driver: 'dragonfly', url: `${BASE}/v2/app/manifests/v1`, headers: { Authorization: 'Bearer harbor-jwt' }, scope: 'single_seed_peer', ...over })

afterEach(async () => {
  for (const s of services.splice(0)) await s.stop()
  manifests.clear()
  fetched.length = 0
})

describe('PreheatService', () => {
  it('GETs the manifest with the request headers and seeds every blob with its Authorization', async () => {
    const m = imageManifest(['cfg', 'l1', 'l2'])
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: m.body, contentType: OCI_MANIFEST })
    const { svc, store, seeder } = service()
    const created = await svc.create(request())
    expect(created.state).toBe('pending')
    const job = await finished(svc, created.id)
    expect(job.state).toBe('succeeded')
    expect(fetched[0]?.headers).toEqual({ authorization: 'Bearer harbor-jwt' })
    expect(seeder.registered.map(r => r.digest)).toEqual([sha('cfg'), sha('l1'), sha('l2')])
    expect(seeder.registered.every(r => r.authorization === 'Bearer harbor-jwt')).toBe(true)
    expect(job.blobs?.map(b => b.url)).toEqual([sha('cfg'), sha('l1'), sha('l2')].map(d => `${BASE}/v2/app/blobs/${d}`))
    // Persisted, without the headers.
    const stored = await store.get(created.id)
    expect(stored?.state).toBe('succeeded')
    expect(JSON.stringify(stored)).not.toContain('harbor-jwt')
  })

  it('expands an index to the configured platform, or to all of them', async () => {
    const amd = imageManifest(['cfg-amd', 'shared', 'amd'])
    const arm = imageManifest(['cfg-arm', 'shared', 'arm'])
    manifests.set(`${BASE}/v2/app/manifests/${amd.digest}`, { body: amd.body })
    manifests.set(`${BASE}/v2/app/manifests/${arm.digest}`, { body: arm.body })
    manifests.set(`${BASE}/v2/app/manifests/multi`, {
      body: json({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ digest: amd.digest, platform: { os: 'linux', architecture: 'amd64' } }, { digest: arm.digest, platform: { os: 'linux', architecture: 'arm64' } }]
      })
    })
    const { svc } = service()
    const one = await finished(svc, (await svc.create(request({ url: `${BASE}/v2/app/manifests/multi` }))).id)
    expect(one.blobs?.map(b => b.digest)).toEqual([sha('cfg-amd'), sha('shared'), sha('amd')])
    const all = await finished(svc, (await svc.create(request({ url: `${BASE}/v2/app/manifests/multi`, platforms: 'all' }))).id)
    expect(all.blobs?.map(b => b.digest)).toEqual([sha('cfg-amd'), sha('shared'), sha('amd'), sha('cfg-arm'), sha('arm')])
  })

  it('a missing tag fails the job with the registry\'s own error', async () => {
    const { svc } = service()
    const job = await finished(svc, (await svc.create(request({ url: `${BASE}/v2/app/manifests/nope` }))).id)
    expect(job.state).toBe('failed')
    expect(job.error).toEqual({ code: 'DF_ERR_UPSTREAM_REJECTED', message: expect.stringContaining('MANIFEST_UNKNOWN: manifest unknown') })
  })

  it('a manifest fetched by digest must hash to it', async () => {
    const m = imageManifest(['a', 'b'])
    manifests.set(`${BASE}/v2/app/manifests/${m.digest}`, { body: json({ tampered: true }) })
    const { svc } = service()
    const job = await finished(svc, (await svc.create(request({ url: `${BASE}/v2/app/manifests/${m.digest}` }))).id)
    expect(job.error?.code).toBe('DF_ERR_PREHEAT_MANIFEST_INVALID')
  })

  it('fetches at most `concurrency` blobs at once, and a failed blob fails the job', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c', '1', '2', '3', '4', '5']).body })
    const { svc, seeder } = service()
    seeder.failSettle.add(sha('5'))
    const job = await finished(svc, (await svc.create(request())).id)
    expect(seeder.maxInFlight).toBe(2)
    expect(job.state).toBe('failed')
    expect(job.error?.message).toBe(`blob ${sha('5')}: digest mismatch`)
  })

  it('starts every fetch at once when the request token is about to expire', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c', '1', '2', '3']).body })
    const expired = `Bearer eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) - 1 })).toString('base64url')}.c2ln`
    const { svc, seeder } = service()
    seeder.hold = true
    const created = await svc.create(request({ headers: { Authorization: expired } }))
    for (let i = 0; i < 200 && seeder.inFlight < 4; i++) await new Promise(resolve => setTimeout(resolve, 5))
    expect(seeder.inFlight).toBe(4)
    seeder.releaseAll()
    expect((await finished(svc, created.id)).state).toBe('succeeded')
  })

  it('after a 401 with a Basic challenge, retries with the supernode\'s credential; retries a busy seed', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c', 'l']).body })
    const { svc, seeder } = service({ credentials: new Map([['reg.test:5000', { username: 'u', password: 'p' }]]) })
    let busy = 1
    seeder.refuse = (digest, authorization) => {
      if (authorization === 'Bearer stale') return dfError('DF_ERR_UPSTREAM_REJECTED', 'answered 401', { details: { status: 401, wwwAuthenticate: 'Basic realm="r"' } })
      if (digest === sha('l') && busy-- > 0) return dfError('DF_ERR_TOO_MANY_TASKS', 'busy')
      return undefined
    }
    const job = await finished(svc, (await svc.create(request({ headers: { authorization: 'Bearer stale' } }))).id)
    expect(job.state).toBe('succeeded')
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`
    // One authorizer per job: the first 401 switches every later fetch of the job to the credential.
    expect(seeder.registered[0]?.authorization).toBe('Bearer stale')
    expect(seeder.registered.filter(r => r.digest === sha('l')).map(r => r.authorization).slice(-2)).toEqual([basic, basic])
  })

  it('fails a job that outlives its timeout', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c']).body })
    const { svc, seeder } = service({ timeoutMs: 50 })
    seeder.hold = true
    const job = await finished(svc, (await svc.create(request())).id)
    expect(job.error?.code).toBe('DF_ERR_PREHEAT_TIMEOUT')
  })

  it('after a restart: a job that needs its lost headers fails with a reason, others resume', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c', 'l']).body })
    manifests.set(`${BASE}/v2/pub/manifests/v1`, { body: imageManifest(['c', 'l']).body })
    const store = new MemoryPreheatJobStore()
    const first = service({ store })
    first.seeder.hold = true
    const withHeaders = await first.svc.create(request())
    const anonymous = await first.svc.create(request({ url: `${BASE}/v2/pub/manifests/v1`, headers: {} }))
    for (let i = 0; i < 200 && first.seeder.inFlight < 2; i++) await new Promise(resolve => setTimeout(resolve, 5))
    await first.svc.stop()
    expect((await store.get(withHeaders.id))?.state).toBe('running')

    const second = service({ store })
    await second.svc.start()
    const failed = await finished(second.svc, withHeaders.id)
    expect(failed.error?.code).toBe('DF_ERR_PREHEAT_INTERRUPTED')
    expect(failed.error?.message).toContain('no registryAuth is configured for reg.test:5000')
    const resumed = await finished(second.svc, anonymous.id)
    expect(resumed).toMatchObject({ state: 'succeeded', resumes: 1 })
    // New jobs continue the id sequence.
    expect((await second.svc.create(request({ url: `${BASE}/v2/pub/manifests/v1`, headers: {} }))).id).toBe(anonymous.id + 1)

    const third = service({ store, credentials: new Map([['reg.test:5000', { username: 'u', password: 'p' }]]) })
    const again = await second.svc.create(request())
    await second.svc.stop()
    await third.svc.start()
    expect((await finished(third.svc, again.id)).state).toBe('succeeded')
  })

  it('all_peers: asks the following dfclients, then succeeds on their reports', async () => {
    manifests.set(`${BASE}/v2/app/manifests/v1`, { body: imageManifest(['c', 'l']).body })
    const { svc } = service()
    await svc.feed.poll('PeerA', { hostname: 'node-a', ip: '10.0.0.5' }, { waitMs: 0 }, new AbortController().signal)
    const created = await svc.create(request({ scope: 'all_peers' }))
    const poll = await svc.feed.poll('PeerA', { hostname: 'node-a', ip: '10.0.0.5' }, { since: 0, waitMs: 5000 }, new AbortController().signal)
    let entry = poll.preheats[0]
    for (let i = 0; i < 100 && entry === undefined; i++) {
      const again = await svc.feed.poll('PeerA', { hostname: 'node-a', ip: '10.0.0.5' }, { since: poll.version, waitMs: 1000 }, new AbortController().signal)
      entry = again.preheats[0]
    }
    expect(entry?.id).toBe(String(created.id))
    expect(entry?.blobs.map(b => b.digest)).toEqual([sha('c'), sha('l')])
    expect(svc.get(created.id)?.peers).toEqual([{ peerId: 'PeerA', hostname: 'node-a', ip: '10.0.0.5', state: 'pending' }])
    svc.feed.report('PeerA', entry!.id, entry!.blobs.map(b => ({ digest: b.digest, ok: true })))
    const job = await finished(svc, created.id)
    expect(job.state).toBe('succeeded')
    expect(job.peers?.[0]?.state).toBe('succeeded')
    expect((await svc.feed.poll('PeerA', { hostname: 'node-a', ip: '10.0.0.5' }, { waitMs: 0 }, new AbortController().signal)).preheats).toEqual([])
  })

  it('refuses a URL that is not a manifest URL before creating anything', async () => {
    const { svc, store } = service()
    await expect(svc.create(request({ url: 'https://reg/v2/app/blobs/x' }))).rejects.toMatchObject({ code: 'DF_ERR_PREHEAT_URL_INVALID' })
    expect(await store.list()).toEqual([])
  })
})
