import { Digester, dfError, formatBytes, parseDigest } from '@damselfly/proto'
import { resolveImage } from '../oci/manifest.js'
import { formatImageReference, parseImageReference } from '../oci/reference.js'
import { RegistryClient, type Credentials } from '../oci/registry-client.js'
import type { Check } from './checks.js'
import { increases, parseScrape, type Scrape } from './metrics-text.js'
import { probe } from './checks.js'

/** Where the canary's bytes came from, from the daemon's own counters. */
export interface ByteSources {
  /** This node's piece cache. */
  local: number
  /** Pieces from other peers. */
  peers: number
  /** Pieces from the supernode's seed (fetched upstream once for the cluster). */
  supernode: number
  /** Straight from the registry, past P2P. */
  upstream: number
}

export interface CanaryResult {
  image: string
  blobs: Array<{ digest: string, size: number, source: string }>
  bytes: ByteSources
  /** `damselfly_upstream_fallbacks_total` increases by reason. */
  fallbacks: Record<string, number>
  checks: Check[]
}

/**
 * Pulls `image` through the mirror the way containerd does (manifest, then every blob with
 * `?ns=<registry>`), verifies every digest, and reads where the bytes came from in the daemon's
 * metrics (`damselfly_blob_bytes_served_total{source}`, `damselfly_piece_bytes_received_total{from}`,
 * `damselfly_upstream_fallbacks_total{reason}`) and each blob's `X-Damselfly-Source`. Any byte from
 * the upstream, or any fallback, fails the check: that is P2P silently not working. The counters are
 * the node's: a pull by someone else at the same moment counts too.
 */
export async function runCanary (mirror: string, imageText: string, options: { platform?: string | undefined, credentials?: Credentials | undefined }): Promise<CanaryResult> {
  const ref = parseImageReference(imageText)
  const image = formatImageReference(ref)
  const before = await scrape(mirror)
  const client = new RegistryClient({ credentials: options.credentials })
  const blobs: CanaryResult['blobs'] = []
  const checks: Check[] = []
  try {
    const resolved = await resolveImage(client, mirror, ref, { ns: ref.host, ...(options.platform === undefined ? {} : { platform: options.platform }) })
    for (const b of resolved.blobs) {
      const url = `${mirror}/v2/${ref.name}/blobs/${b.digest}?ns=${encodeURIComponent(ref.host)}`
      const res = await client.request('GET', url, ref.name, { accept: '*/*' })
      if (res.status !== 200) {
        await res.body.dump()
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `GET blob ${b.digest} through the mirror answered ${res.status}`, { details: { status: res.status } })
      }
      const digester = new Digester(parseDigest(b.digest).algorithm)
      for await (const chunk of res.body) digester.update(chunk as Buffer)
      const actual = digester.digest()
      if (actual !== b.digest || digester.bytes !== b.size) throw dfError('DF_ERR_BLOB_DIGEST_MISMATCH', `blob ${b.digest} through the mirror: ${digester.bytes} bytes hashing to ${actual}`)
      const source = res.headers['x-damselfly-source']
      blobs.push({ digest: b.digest, size: b.size, source: typeof source === 'string' ? source : 'unknown' })
    }
    checks.push({ name: 'canary', status: 'ok', detail: `${image}: ${blobs.length} blob(s), ${formatBytes(blobs.reduce((n, b) => n + b.size, 0))}, every digest verified (sources: ${summarise(blobs.map(b => b.source))})` })
  } catch (err) {
    checks.push({ name: 'canary', status: 'fail', detail: `${image} through ${mirror}: ${err instanceof Error ? err.message : String(err)}` })
  }
  const after = await scrape(mirror)
  const served = increases(before, after, 'damselfly_blob_bytes_served_total', 'source')
  const received = increases(before, after, 'damselfly_piece_bytes_received_total', 'from')
  const fallbacks = increases(before, after, 'damselfly_upstream_fallbacks_total', 'reason')
  const bytes: ByteSources = { local: served.local ?? 0, peers: received.peer ?? 0, supernode: received.supernode ?? 0, upstream: served.upstream ?? 0 }
  const line = `local ${formatBytes(bytes.local)}, peers ${formatBytes(bytes.peers)}, supernode ${formatBytes(bytes.supernode)}, upstream ${formatBytes(bytes.upstream)}`
  if (bytes.upstream > 0 || Object.keys(fallbacks).length > 0) {
    const reasons = Object.entries(fallbacks).map(([r, n]) => `${r} ×${n}`).join(', ')
    checks.push({ name: 'sources', status: 'fail', detail: `${line}: P2P is not working, bytes came straight from the registry${reasons === '' ? '' : ` (fallbacks: ${reasons})`}; see the daemon's log for "P2P unavailable"` })
  } else if (blobs.length > 0 && bytes.peers + bytes.supernode === 0) {
    checks.push({ name: 'sources', status: 'ok', detail: `${line}: served from this node's cache (pulled before), so this run did not exercise peers; try an image not pulled here yet` })
  } else {
    checks.push({ name: 'sources', status: checks[0]?.status === 'fail' ? 'warn' : 'ok', detail: line })
  }
  return { image, blobs, bytes, fallbacks, checks }
}

async function scrape (mirror: string): Promise<Scrape> {
  const r = await probe(`${mirror}/metrics`)
  return r.status === 200 ? parseScrape(r.text) : new Map()
}

function summarise (sources: string[]): string {
  const counts = new Map<string, number>()
  for (const s of sources) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].map(([s, n]) => `${s} ×${n}`).join(', ')
}
