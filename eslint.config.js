// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** Packages that do I/O or tie code to one transport; each ban below says why it applies where it does. */
const IO_AND_TRANSPORTS = [
  { group: ['node:fs', 'node:fs/*', 'fs', 'node:net', 'node:http', 'node:https', 'node:dgram', 'node:child_process'], message: 'proto does no I/O: it is the wire contract both binaries share (STYLE.md 7.2 rule 1).' },
  { group: ['express', 'libp2p', '@libp2p/*', '@chainsafe/*', 'level', 'classic-level', 'undici', 'pino', 'prom-client'], message: 'proto depends on nothing but codecs and schemas (STYLE.md 7.2 rule 1).' },
  { group: ['@damselfly/*'], message: 'proto depends on nothing of ours (STYLE.md 7.2 rule 1).' }
]
const ADAPTERS = [
  { group: ['express', 'libp2p', '@libp2p/*', '@chainsafe/*', 'level', 'classic-level', 'undici'], message: 'domain logic talks to ports, not to HTTP, libp2p or LevelDB: adapters implement the ports and the composition root wires them (STYLE.md 7.2 rule 4).' }
]

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.bench/**', '.damselfly/**', 'deploy/kubernetes/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', setImmediate: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
      'no-console': 'error'
    }
  },
  {
    files: ['packages/proto/src/**/*.ts'],
    ignores: ['packages/proto/src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: IO_AND_TRANSPORTS }] }
  },
  {
    files: ['packages/supernode/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['@damselfly/dfclient', '@damselfly/dfclient/*'], message: 'supernode and dfclient never import each other: they meet only over the wire contract in proto (STYLE.md 7.2 rule 2).' }, { group: ['@damselfly/*/src/*'], message: 'import packages through their exports map only (STYLE.md 7.2 rule 5).' }] }] }
  },
  {
    files: ['packages/dfclient/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['@damselfly/supernode', '@damselfly/supernode/*'], message: 'supernode and dfclient never import each other: they meet only over the wire contract in proto (STYLE.md 7.2 rule 2).' }, { group: ['@damselfly/*/src/*'], message: 'import packages through their exports map only (STYLE.md 7.2 rule 5).' }] }] }
  },
  {
    files: ['packages/supernode/src/scheduler/**/*.ts', 'packages/dfclient/src/download/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ADAPTERS }] }
  },
  {
    // The preheat domain (jobs, runner, feed, auth policy) talks to its ports; its adapters are the
    // files named after their mechanism. Repeats the supernode ban: a later block replaces the rule.
    files: ['packages/supernode/src/preheat/*.ts'],
    ignores: ['**/*.test.ts', 'packages/supernode/src/preheat/level-job-store.ts', 'packages/supernode/src/preheat/registry-http.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...ADAPTERS, { group: ['@damselfly/dfclient', '@damselfly/dfclient/*'], message: 'supernode and dfclient never import each other: they meet only over the wire contract in proto (STYLE.md 7.2 rule 2).' }] }] }
  },
  {
    files: ['test/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['@damselfly/*/src/*', '../packages/*', '../../packages/*'], message: 'tests use packages through their public exports or as real processes (STYLE.md 7.2 rule 3).' }] }] }
  },
  {
    // Tests poke at JSON replies whose shape is the thing under test.
    files: ['**/*.test.ts', '**/test-support/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  },
  {
    // The supernode dashboard's page script runs in a browser, unbundled (no build step).
    files: ['packages/supernode/src/dashboard/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { document: 'readonly', window: 'readonly', sessionStorage: 'readonly', Node: 'readonly' } }
  },
  {
    // Command-line entry points and benchmarks talk to a terminal.
    files: ['packages/*/src/main.ts', 'packages/*/src/cli/**/*.ts', 'test/bench/**/*.ts', 'scripts/**/*.mjs'],
    rules: { 'no-console': 'off' }
  }
)
