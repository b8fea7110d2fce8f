import { lookup as dnsLookup } from 'node:dns'
import { Agent } from 'undici'
import { registryTargetPolicy, type RegistryTargetPolicy } from '@damselfly/proto'

/**
 * The supernode's registry policy (DF_ERR_REGISTRY_NOT_ALLOWED), from its `--registry` entries:
 * their origins may be anything, every other target must be a public address. Shared by the seed's
 * back-to-source fetch and the preheat manifest and token fetches, so a task URL, a preheat URL or a
 * registry's token realm cannot point the supernode at cloud metadata or a loopback port.
 */
export function supernodeRegistryPolicy (registries: Readonly<Record<string, string>>): RegistryTargetPolicy {
  return registryTargetPolicy(Object.values(registries), (host, cb) => { dnsLookup(host, { all: true }, cb) })
}

/** An undici Agent that connects only where `policy` allows, with `timeoutMs` for headers and body pauses. */
export function policyAgent (policy: RegistryTargetPolicy, timeoutMs: number): Agent {
  return new Agent({ connect: { lookup: policy.lookup }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
}
