import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import type { IProbe } from 'kubernetes-models/v1/Probe'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { stringify } from 'yaml'

/** What an operator may want different; everything else follows from it. */
export interface DeployOptions {
  namespace: string
  supernodeImage: string
  dfclientImage: string
  /** Supernodes: dfclients use the first that answers, the others are warm standbys. */
  supernodeReplicas: number
  supernodeStorage: string
  /** Secret holding the cluster token under the key `token` (created by the operator, never shipped). */
  tokenSecret: string
}

export const DEFAULTS: DeployOptions = {
  namespace: 'damselfly',
  supernodeImage: 'damselfly/supernode:0.1.0',
  dfclientImage: 'damselfly/dfclient:0.1.0',
  supernodeReplicas: 2,
  supernodeStorage: '20Gi',
  tokenSecret: 'damselfly-cluster-token'
}

const PART_OF = { 'app.kubernetes.io/part-of': 'damselfly' }
const SUPERNODE_LABELS = { 'app.kubernetes.io/name': 'supernode', ...PART_OF }
const DFCLIENT_LABELS = { 'app.kubernetes.io/name': 'dfclient', ...PART_OF }
const SUPERNODE_HTTP = 8002
const SUPERNODE_P2P = 8003
const MIRROR_PORT = 65001
const DFCLIENT_P2P = 65002

/** A Kubernetes object as rendered: anything with apiVersion, kind and metadata. */
export interface Manifest {
  toJSON: () => unknown
  validate: () => void
}

const tokenEnv = (o: DeployOptions): IEnvVar => ({ name: 'DAMSELFLY_TOKEN', valueFrom: { secretKeyRef: { name: o.tokenSecret, key: 'token' } } })

function httpProbe (path: string, port: number, host: string | undefined, periodSeconds: number, failureThreshold: number): IProbe {
  return { httpGet: { path, port, ...(host === undefined ? {} : { host }) }, periodSeconds, failureThreshold, timeoutSeconds: 3 }
}

/** The supernode's and the dfclient's YAML configs (CONTRACTS.md keys), mounted at /etc/damselfly. */
export function configMap (o: DeployOptions): ConfigMap {
  // Every ready supernode pod, found through the headless Service and re-resolved every 30 s: each
  // blob is owned by one of them (rendezvous hashing), and a pod that dies hands its blobs to the next.
  const supernodes = [`dns+http://damselfly-supernode.${o.namespace}.svc.cluster.local:${SUPERNODE_HTTP}`]
  const supernode = {
    listen: `0.0.0.0:${SUPERNODE_HTTP}`,
    p2pListen: [`/ip4/0.0.0.0/tcp/${SUPERNODE_P2P}`],
    dataDir: '/var/lib/damselfly/supernode',
    // How the supernode reaches registries: HOST=URL, e.g. a private registry over plain HTTP.
    registry: [] as string[],
    logLevel: 'info'
  }
  const dfclient = {
    supernode: supernodes,
    // Loopback only: the node's containerd is the one client; peers use libp2p on DFCLIENT_P2P.
    listen: `127.0.0.1:${MIRROR_PORT}`,
    p2pListen: [`/ip4/0.0.0.0/tcp/${DFCLIENT_P2P}`],
    dataDir: '/var/lib/damselfly/dfclient',
    defaultRegistry: 'docker.io',
    registry: [] as string[],
    cacheSize: '20%',
    cacheTtl: '24h',
    logLevel: 'info'
  }
  return new ConfigMap({
    metadata: { name: 'damselfly-config', namespace: o.namespace, labels: PART_OF },
    data: { 'supernode.yaml': stringify(supernode), 'dfclient.yaml': stringify(dfclient) }
  })
}

export function namespace (o: DeployOptions): Namespace {
  return new Namespace({ metadata: { name: o.namespace, labels: PART_OF } })
}

/**
 * Headless Service: its name resolves to every ready supernode pod (how dfclients find them all,
 * `dns+http://`), and each pod gets a stable name (`damselfly-supernode-0.damselfly-supernode`).
 */
export function supernodeService (o: DeployOptions): Service {
  return new Service({
    metadata: { name: 'damselfly-supernode', namespace: o.namespace, labels: SUPERNODE_LABELS },
    spec: {
      clusterIP: 'None',
      selector: SUPERNODE_LABELS,
      ports: [
        { name: 'http', port: SUPERNODE_HTTP, targetPort: 'http' },
        { name: 'p2p', port: SUPERNODE_P2P, targetPort: 'p2p' }
      ]
    }
  })
}

/**
 * The supernodes: LevelDB and seeded pieces on a PersistentVolume each, so a restart keeps the cache.
 * Each announces its pod IP for libp2p (peers dial it there).
 */
export function supernodeStatefulSet (o: DeployOptions): StatefulSet {
  const container: IContainer = {
    name: 'supernode',
    image: o.supernodeImage,
    args: ['--config', '/etc/damselfly/supernode.yaml', '--p2p-announce', `/ip4/$(POD_IP)/tcp/${SUPERNODE_P2P}`],
    env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, tokenEnv(o)],
    ports: [{ name: 'http', containerPort: SUPERNODE_HTTP }, { name: 'p2p', containerPort: SUPERNODE_P2P }],
    startupProbe: httpProbe('/livez', SUPERNODE_HTTP, undefined, 2, 30),
    livenessProbe: httpProbe('/livez', SUPERNODE_HTTP, undefined, 10, 3),
    readinessProbe: httpProbe('/readyz', SUPERNODE_HTTP, undefined, 5, 2),
    // Measured: a seed streaming a 256 MiB layer to several peers stays near 200 MiB RSS.
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'data', mountPath: '/var/lib/damselfly/supernode' },
      { name: 'config', mountPath: '/etc/damselfly', readOnly: true }
    ]
  }
  return new StatefulSet({
    metadata: { name: 'damselfly-supernode', namespace: o.namespace, labels: SUPERNODE_LABELS },
    spec: {
      serviceName: 'damselfly-supernode',
      replicas: o.supernodeReplicas,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: SUPERNODE_LABELS },
      template: {
        metadata: { labels: SUPERNODE_LABELS },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          terminationGracePeriodSeconds: 30,
          containers: [container],
          volumes: [{ name: 'config', configMap: { name: 'damselfly-config', items: [{ key: 'supernode.yaml', path: 'supernode.yaml' }] } }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SUPERNODE_LABELS } } }] } }
        }
      },
      volumeClaimTemplates: [{
        metadata: { name: 'data', labels: SUPERNODE_LABELS },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.supernodeStorage } } }
      }]
    }
  })
}

/**
 * One dfclient per node, on the host network: the node's containerd reaches the mirror at
 * 127.0.0.1:65001 and peers reach libp2p at the node's IP. Before it starts, an init container writes
 * containerd's hosts.toml files (`dfclient install --runtime containerd`) into the host's
 * /etc/containerd/certs.d; containerd reads them on every pull, so no restart is needed (the CRI's
 * `config_path` must name that directory: `dfclient doctor` says when it does not).
 */
export function dfclientDaemonSet (o: DeployOptions): DaemonSet {
  const mirror = `http://127.0.0.1:${MIRROR_PORT}`
  const install: IContainer = {
    name: 'install-containerd-config',
    image: o.dfclientImage,
    command: ['dfclient', 'install', '--runtime', 'containerd', '--config-path', '/host/etc/containerd/certs.d', '--containerd-config', '/host/etc/containerd/config.toml', '--mirror', mirror, '--config', '/etc/damselfly/dfclient.yaml'],
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] } },
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    volumeMounts: [
      { name: 'containerd-config', mountPath: '/host/etc/containerd' },
      { name: 'config', mountPath: '/etc/damselfly', readOnly: true }
    ]
  }
  const dfclient: IContainer = {
    name: 'dfclient',
    image: o.dfclientImage,
    args: ['daemon', '--config', '/etc/damselfly/dfclient.yaml', '--p2p-announce', `/ip4/$(HOST_IP)/tcp/${DFCLIENT_P2P}`],
    env: [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }, tokenEnv(o)],
    ports: [{ name: 'mirror', containerPort: MIRROR_PORT, hostPort: MIRROR_PORT }, { name: 'p2p', containerPort: DFCLIENT_P2P, hostPort: DFCLIENT_P2P }],
    // The mirror listens on the node's loopback (host network), so probes go there.
    startupProbe: httpProbe('/livez', MIRROR_PORT, '127.0.0.1', 2, 30),
    livenessProbe: httpProbe('/livez', MIRROR_PORT, '127.0.0.1', 10, 3),
    readinessProbe: httpProbe('/readyz', MIRROR_PORT, '127.0.0.1', 5, 2),
    // Measured: 191–203 MiB peak RSS over a cold and a warm 256 MiB layer (README benchmarks).
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'data', mountPath: '/var/lib/damselfly/dfclient' },
      { name: 'config', mountPath: '/etc/damselfly', readOnly: true },
      // Read-only, at the host's path: `kubectl exec … dfclient doctor` checks the real hosts.toml files.
      { name: 'containerd-config', mountPath: '/etc/containerd', readOnly: true }
    ]
  }
  return new DaemonSet({
    metadata: { name: 'damselfly-dfclient', namespace: o.namespace, labels: DFCLIENT_LABELS },
    spec: {
      selector: { matchLabels: DFCLIENT_LABELS },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
      template: {
        metadata: { labels: DFCLIENT_LABELS },
        spec: {
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          // Every node pulls images, tainted ones included; evicting the mirror would only slow pulls.
          priorityClassName: 'system-node-critical',
          tolerations: [{ operator: 'Exists' }],
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          terminationGracePeriodSeconds: 15,
          initContainers: [install],
          containers: [dfclient],
          volumes: [
            { name: 'data', hostPath: { path: '/var/lib/damselfly/dfclient', type: 'DirectoryOrCreate' } },
            { name: 'containerd-config', hostPath: { path: '/etc/containerd', type: 'DirectoryOrCreate' } },
            { name: 'config', configMap: { name: 'damselfly-config', items: [{ key: 'dfclient.yaml', path: 'dfclient.yaml' }] } }
          ]
        }
      }
    }
  })
}

/** Prometheus Operator scrape config for the supernodes (the dfclient's /metrics is on the node's loopback). */
export function serviceMonitor (o: DeployOptions): ServiceMonitor {
  return new ServiceMonitor({
    metadata: { name: 'damselfly-supernode', namespace: o.namespace, labels: SUPERNODE_LABELS },
    spec: {
      selector: { matchLabels: SUPERNODE_LABELS },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }]
    }
  })
}

/** An example only: the token Secret is created by the operator (README), never committed. */
export function tokenSecretExample (o: DeployOptions): Secret {
  return new Secret({
    metadata: { name: o.tokenSecret, namespace: o.namespace, labels: PART_OF },
    type: 'Opaque',
    stringData: { token: 'REPLACE-WITH-THE-OUTPUT-OF-openssl-rand-hex-32' }
  })
}
