import type { Credentials } from '../oci/registry-client.js'
import type { Runtime } from '../install/install.js'
import { runCanary, type CanaryResult } from './canary.js'
import { checkDaemon, checkRuntimes, checkSupernode, type Check } from './checks.js'

export interface DoctorInit {
  mirror: string
  supernode?: readonly string[] | undefined
  runtime?: Runtime | undefined
  configPath?: string | undefined
  containerdConfig: string
  /** The canary image; `undefined` skips the pull (reported as a warning). */
  image?: string | undefined
  platform?: string | undefined
  credentials?: Credentials | undefined
}

export interface DoctorReport {
  checks: Check[]
  canary?: CanaryResult
  /** True when no check failed: P2P works for this node. */
  ok: boolean
}

/** Runs every check in order: daemon, supernode, runtime config, canary pull. */
export async function runDoctor (init: DoctorInit): Promise<DoctorReport> {
  const daemon = await checkDaemon(init.mirror)
  const checks = [...daemon.checks]
  checks.push(...await checkSupernode(init.supernode, daemon.status))
  checks.push(...await checkRuntimes({ runtime: init.runtime, configPath: init.configPath, containerdConfig: init.containerdConfig, mirror: init.mirror }))
  let canary: CanaryResult | undefined
  if (daemon.checks.some(c => c.status === 'fail')) {
    checks.push({ name: 'canary', status: 'fail', detail: 'skipped: the daemon is not running' })
  } else if (init.image === undefined) {
    checks.push({ name: 'canary', status: 'warn', detail: 'no --image given: no canary pulled, so where bytes come from is unchecked' })
  } else {
    canary = await runCanary(init.mirror, init.image, { platform: init.platform, credentials: init.credentials })
    checks.push(...canary.checks)
  }
  return { checks, ...(canary === undefined ? {} : { canary }), ok: checks.every(c => c.status !== 'fail') }
}
