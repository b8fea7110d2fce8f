import type { Command } from 'commander'
import { registerDoctor } from './doctor/command.js'
import { registerGet } from './get/command.js'
import { registerInstall } from './install/command.js'

/** The operator tools next to `dfclient daemon`: get, install, doctor (CONTRACTS.md). */
export function registerCliCommands (program: Command): void {
  registerGet(program)
  registerInstall(program)
  registerDoctor(program)
}
