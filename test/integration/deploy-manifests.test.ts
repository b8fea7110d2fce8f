import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, expect, test } from 'vitest'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { DEFAULTS, renderAll } from '@damselfly/deploy'
import { resolveDaemonConfig } from '@damselfly/dfclient'
import { loadSupernodeConfig } from '@damselfly/supernode'
import { repoRoot, runDfclient } from '../harness/index.js'

// deploy/: the committed Kubernetes YAML is what the typed generator renders, every object in it passes
// the Kubernetes schema validation (kubernetes-models, the API server's OpenAPI types), the embedded
// configs pass the binaries' own validation, the init container's command line really runs, and the
// Dockerfiles and systemd units point at files that exist. No cluster runs here.
const root = repoRoot()
const kube = join(root, 'deploy', 'kubernetes')

/** apiVersion/kind → the model that validates it. */
const MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor
}

async function yamlFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await yamlFiles(p))
    else if (e.name.endsWith('.yaml')) out.push(p)
  }
  return out.sort()
}

interface K8sObject { apiVersion: string, kind: string, metadata: { name: string }, [k: string]: unknown }

async function objects (): Promise<Array<{ file: string, obj: K8sObject }>> {
  const out: Array<{ file: string, obj: K8sObject }> = []
  for (const file of await yamlFiles(kube)) {
    if (file.endsWith('kustomization.yaml')) continue
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      expect(doc.errors, file).toEqual([])
      out.push({ file: relative(kube, file), obj: doc.toJSON() as K8sObject })
    }
  }
  return out
}

const find = async <T>(kind: string, name: string): Promise<T> => (await objects()).find(o => o.obj.kind === kind && o.obj.metadata.name === name)?.obj as T

describe('deploy/kubernetes', () => {
  test('the committed YAML is exactly what deploy/src renders (npm run deploy:generate)', async () => {
    const rendered = renderAll(DEFAULTS)
    for (const f of rendered) expect(await readFile(join(kube, f.path), 'utf8'), `deploy/kubernetes/${f.path} is stale`).toBe(f.text)
    expect((await yamlFiles(kube)).map(f => relative(kube, f))).toEqual(rendered.map(f => f.path).sort())
  })

  test('every object passes the Kubernetes schema validation', async () => {
    const all = await objects()
    expect(all.map(o => `${o.obj.kind}/${o.obj.metadata.name}`).sort()).toEqual([
      'ConfigMap/damselfly-config', 'DaemonSet/damselfly-dfclient', 'Namespace/damselfly', 'Secret/damselfly-cluster-token',
      'Service/damselfly-supernode', 'ServiceMonitor/damselfly-supernode', 'StatefulSet/damselfly-supernode'
    ])
    for (const { file, obj } of all) {
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`]
      expect(Model, `${file}: no schema for ${obj.apiVersion} ${obj.kind}`).toBeDefined()
      expect(() => { new Model!(obj as never).validate() }, `${file}: ${obj.kind}/${obj.metadata.name}`).not.toThrow()
    }
    // The validator is not a rubber stamp: a wrong type is caught.
    const broken = structuredClone((all.find(o => o.obj.kind === 'StatefulSet') as { obj: K8sObject }).obj) as any
    broken.spec.replicas = 'two'
    expect(() => { new StatefulSet(broken).validate() }).toThrow(/replicas must be integer/)
  })

  test('kustomizations name files that exist', async () => {
    for (const file of (await yamlFiles(kube)).filter(f => f.endsWith('kustomization.yaml'))) {
      const k = parseYaml(await readFile(file, 'utf8')) as { resources: string[] }
      for (const r of k.resources) {
        const p = join(file, '..', r)
        const isDir = (await stat(p)).isDirectory()
        expect(existsSync(isDir ? join(p, 'kustomization.yaml') : p), `${relative(kube, file)} → ${r}`).toBe(true)
      }
    }
  })

  test('the embedded configs pass the binaries\' own validation', async () => {
    const cm = await find<{ data: Record<string, string> }>('ConfigMap', 'damselfly-config')
    const df = resolveDaemonConfig({ file: { path: 'dfclient.yaml', text: cm.data['dfclient.yaml']! }, env: {}, flags: {} })
    // One name for every ready supernode pod (the headless Service), resolved by the dfclients.
    expect(df.supernode).toEqual([{ kind: 'dns', scheme: 'http', host: 'damselfly-supernode.damselfly.svc.cluster.local', port: 8002, path: '' }])
    expect(df.listen).toEqual({ host: '127.0.0.1', port: 65001 })
    const sn = loadSupernodeConfig({ file: { path: 'supernode.yaml', text: cm.data['supernode.yaml']! }, env: {}, flags: {} })
    expect(sn.dataDir).toBe('/var/lib/damselfly/supernode')
  })

  test('shape: StatefulSet with PVC, headless Service and probes; DaemonSet on the host network with the installer as init container', async () => {
    const sts = await find<any>('StatefulSet', 'damselfly-supernode')
    const svc = await find<any>('Service', 'damselfly-supernode')
    expect(svc.spec.clusterIP).toBe('None')
    expect(sts.spec.serviceName).toBe(svc.metadata.name)
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe(DEFAULTS.supernodeStorage)
    const sc = sts.spec.template.spec.containers[0]
    expect([sc.livenessProbe.httpGet.path, sc.readinessProbe.httpGet.path]).toEqual(['/livez', '/readyz'])
    expect(sc.resources.requests).toBeDefined()
    expect(sc.env).toContainEqual({ name: 'DAMSELFLY_TOKEN', valueFrom: { secretKeyRef: { name: DEFAULTS.tokenSecret, key: 'token' } } })

    const ds = await find<any>('DaemonSet', 'damselfly-dfclient')
    expect(ds.spec.template.spec.hostNetwork).toBe(true)
    expect(ds.spec.template.spec.volumes).toContainEqual({ name: 'data', hostPath: { path: '/var/lib/damselfly/dfclient', type: 'DirectoryOrCreate' } })
    const init = ds.spec.template.spec.initContainers[0]
    expect(init.command.slice(0, 4)).toEqual(['dfclient', 'install', '--runtime', 'containerd'])
    const main = ds.spec.template.spec.containers[0]
    expect([main.livenessProbe.httpGet, main.readinessProbe.httpGet]).toEqual([{ path: '/livez', port: 65001, host: '127.0.0.1' }, { path: '/readyz', port: 65001, host: '127.0.0.1' }])
  })

  test('the init container\'s command line runs for real and writes hosts.toml files', async () => {
    const ds = await find<any>('DaemonSet', 'damselfly-dfclient')
    const cm = await find<{ data: Record<string, string> }>('ConfigMap', 'damselfly-config')
    const dir = await mkdtemp(join(tmpdir(), 'dfdeploy-'))
    try {
      await writeFile(join(dir, 'dfclient.yaml'), cm.data['dfclient.yaml']!)
      const args = (ds.spec.template.spec.initContainers[0].command as string[]).slice(1)
        .map(a => a.replace('/host/etc/containerd', join(dir, 'containerd')).replace('/etc/damselfly/dfclient.yaml', join(dir, 'dfclient.yaml')))
      const r = await runDfclient(args)
      expect(r.code, r.stderr).toBe(0)
      expect(existsSync(join(dir, 'containerd', 'certs.d', '_default', 'hosts.toml'))).toBe(true)
      expect(existsSync(join(dir, 'containerd', 'certs.d', 'docker.io', 'hosts.toml'))).toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('deploy/docker and deploy/systemd', () => {
  test.each(['dfclient', 'supernode'])('%s.Dockerfile: Node 22+ base, every COPY source exists', async (name) => {
    const text = await readFile(join(root, 'deploy', 'docker', `${name}.Dockerfile`), 'utf8')
    const base = /^ARG NODE_IMAGE=node:(\d+)/m.exec(text)
    expect(Number(base?.[1])).toBeGreaterThanOrEqual(22)
    for (const line of text.split('\n').filter(l => l.startsWith('COPY ') && !l.includes('--from='))) {
      for (const src of line.split(/\s+/).slice(1, -1)) expect(existsSync(join(root, src)), `${name}: COPY ${src}`).toBe(true)
    }
    expect(text).toContain(`packages/${name}/dist/main.js`)
  })

  test.each(['dfclient', 'supernode'])('damselfly-%s.service runs the built binary with its config', async (name) => {
    const text = await readFile(join(root, 'deploy', 'systemd', `damselfly-${name}.service`), 'utf8')
    for (const section of ['[Unit]', '[Service]', '[Install]']) expect(text).toContain(section)
    const exec = /^ExecStart=(.*)$/m.exec(text)?.[1]?.split(' ') ?? []
    expect(exec[1]).toBe(`/opt/damselfly/packages/${name}/dist/main.js`)
    expect(existsSync(join(root, 'packages', name, 'dist', 'main.js'))).toBe(true)
    expect(exec).toContain(`/etc/damselfly/${name}.yaml`)
    // The example config next to the unit is valid for the binary.
    const example = await readFile(join(root, 'deploy', 'systemd', `${name}.yaml.example`), 'utf8')
    if (name === 'dfclient') expect(() => resolveDaemonConfig({ file: { path: 'x', text: example }, env: {}, flags: {} })).not.toThrow()
    else expect(() => loadSupernodeConfig({ file: { path: 'x', text: example }, env: {}, flags: {} })).not.toThrow()
  })
})
