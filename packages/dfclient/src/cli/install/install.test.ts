import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parse } from 'smol-toml'
import { containerdConfigPath, managedHostsToml } from './containerd.js'
import { runInstall, type InstallInit } from './install.js'

const MIRROR = 'http://127.0.0.1:65001'

describe('dfclient install', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dfc-install-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })
  const init = (o: Partial<InstallInit>): InstallInit => ({
    runtime: 'containerd', configPath: join(dir, 'certs.d'), mirror: MIRROR, registries: new Map(), defaultRegistry: 'docker.io',
    containerdConfig: join(dir, 'config.toml'), dryRun: false, uninstall: false, ...o
  })

  it('containerd: _default, docker.io and configured registries; merges a foreign hosts.toml; idempotent; uninstalls', async () => {
    const foreign = join(dir, 'certs.d', 'reg.example', 'hosts.toml')
    await mkdir(join(dir, 'certs.d', 'reg.example'), { recursive: true })
    await writeFile(foreign, 'server = "https://reg.example"\n# keep me\n[host."https://cache.example"]\n  capabilities = ["pull"]\n  skip_verify = true\n')
    const registries = new Map([['127.0.0.1:5000', 'http://127.0.0.1:5000']])
    const dry = await runInstall(init({ registries, dryRun: true }))
    expect(dry.diff).toContain('+++ ' + join(dir, 'certs.d', '_default', 'hosts.toml'))
    expect(dry.written).toEqual([])
    expect(await readdir(join(dir, 'certs.d'))).toEqual(['reg.example'])

    const first = await runInstall(init({ registries }))
    expect(first.written.map(p => p.slice(dir.length))).toEqual(['/certs.d/127.0.0.1:5000/hosts.toml', '/certs.d/_default/hosts.toml', '/certs.d/docker.io/hosts.toml', '/certs.d/reg.example/hosts.toml'])
    expect(first.backups).toHaveLength(1)
    expect(await readFile(join(dir, 'certs.d', '127.0.0.1:5000', 'hosts.toml'), 'utf8')).toBe(managedHostsToml(MIRROR, 'http://127.0.0.1:5000'))
    const def = parse(await readFile(join(dir, 'certs.d', '_default', 'hosts.toml'), 'utf8'))
    expect(def).toEqual({ host: { [MIRROR]: { capabilities: ['pull', 'resolve'] } } })
    const merged = parse(await readFile(foreign, 'utf8')) as { server: string, host: Record<string, unknown> }
    expect(merged.server).toBe('https://reg.example')
    expect(Object.keys(merged.host)).toEqual([MIRROR, 'https://cache.example'])
    expect(merged.host['https://cache.example']).toEqual({ capabilities: ['pull'], skip_verify: true })
    // No config.toml here: no warning. One without config_path: a warning.
    expect(first.warnings).toEqual([])

    const again = await runInstall(init({ registries }))
    expect([again.written, again.backups, again.diff]).toEqual([[], [], ''])

    await writeFile(join(dir, 'config.toml'), 'version = 2\n')
    expect((await runInstall(init({ registries, dryRun: true }))).warnings[0]).toMatch(/sets no registry config_path/)

    const gone = await runInstall(init({ registries, uninstall: true }))
    expect(gone.removed).toHaveLength(3)
    const restored = parse(await readFile(foreign, 'utf8')) as { host: Record<string, unknown> }
    expect(Object.keys(restored.host)).toEqual(['https://cache.example'])
  })

  it('containerd: refuses to touch a hosts.toml it cannot parse', async () => {
    await mkdir(join(dir, 'certs.d', 'bad.example'), { recursive: true })
    await writeFile(join(dir, 'certs.d', 'bad.example', 'hosts.toml'), 'server = \n')
    await expect(runInstall(init({}))).rejects.toMatchObject({ code: 'DF_ERR_RUNTIME_CONFIG_INVALID' })
  })

  it('reads containerd config_path for containerd 1.x and 2.x', () => {
    expect(containerdConfigPath('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n')).toBe('/etc/containerd/certs.d')
    expect(containerdConfigPath('version = 3\n[plugins."io.containerd.cri.v1.images".registry]\nconfig_path = "/x"\n')).toBe('/x')
    expect(containerdConfigPath('version = 2\n')).toBeUndefined()
  })

  it('docker: merges registry-mirrors, keeps other keys, idempotent, uninstalls', async () => {
    const path = join(dir, 'docker', 'daemon.json')
    await mkdir(join(dir, 'docker'))
    await writeFile(path, '{"log-driver":"local","registry-mirrors":["https://mirror.example/"]}')
    const r = await runInstall(init({ runtime: 'docker', configPath: join(dir, 'docker') }))
    expect(r.backups).toHaveLength(1)
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ 'log-driver': 'local', 'registry-mirrors': [MIRROR, 'https://mirror.example/'] })
    expect(r.notes.join(' ')).toMatch(/Docker Hub images only/)
    expect((await runInstall(init({ runtime: 'docker', configPath: join(dir, 'docker') }))).written).toEqual([])
    await runInstall(init({ runtime: 'docker', configPath: join(dir, 'docker'), uninstall: true }))
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ 'log-driver': 'local', 'registry-mirrors': ['https://mirror.example/'] })
    await writeFile(path, '[1]')
    await expect(runInstall(init({ runtime: 'docker', configPath: join(dir, 'docker') }))).rejects.toMatchObject({ code: 'DF_ERR_RUNTIME_CONFIG_INVALID' })
  })

  it('docker: creates daemon.json when there is none', async () => {
    await runInstall(init({ runtime: 'docker', configPath: join(dir, 'docker') }))
    expect(JSON.parse(await readFile(join(dir, 'docker', 'daemon.json'), 'utf8'))).toEqual({ 'registry-mirrors': [MIRROR] })
  })

  it('podman: a drop-in for the default registry, insecure for http, removed by uninstall', async () => {
    const configPath = join(dir, 'containers')
    await runInstall(init({ runtime: 'podman', configPath, defaultRegistry: '127.0.0.1:5000', registries: new Map([['127.0.0.1:5000', 'http://127.0.0.1:5000']]) }))
    const doc = parse(await readFile(join(configPath, 'registries.conf.d', '50-damselfly.conf'), 'utf8'))
    expect(doc).toEqual({ registry: [{ prefix: '127.0.0.1:5000', location: '127.0.0.1:5000', insecure: true, mirror: [{ location: '127.0.0.1:65001', insecure: true }] }] })
    const gone = await runInstall(init({ runtime: 'podman', configPath, uninstall: true }))
    expect(gone.removed).toHaveLength(1)
    expect(gone.backups).toEqual([])
  })
})
