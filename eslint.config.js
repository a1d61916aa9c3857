import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/**
 * The layers and what each may import (docs/architecture.md): `protocol/` is
 * the wire contract and imports neither side; `broker/` and `client/` import
 * `protocol/` and never each other. A wrong import fails `npm run lint`
 * (test/layers.test.ts shows it failing).
 */
const layer = (files, forbidden, ignores = []) => ({
  files,
  ignores,
  rules: { 'no-restricted-imports': ['error', { patterns: forbidden }] }
})
const folder = (name, message) => ({ group: [`**/${name}/*`, `**/${name}`], message })
const wireOnly = 'protocol/ is the wire contract: it imports neither broker/ nor client/, nor an MQTT library'
/*
 * Only broker/mqtt/ knows Aedes (docs/mqtt-adapter.md): its hooks, its
 * internals, its emitter and the packet writer it uses. broker/persistence/
 * implements aedes-persistence's interface, so it may import that package
 * (types, the conformance suite), but not Aedes itself.
 */
const brokerNotClient = folder('client', 'broker/ may not import client/: share the code through protocol/ (docs/architecture.md)')
const aedesOnly = 'only broker/mqtt/ may import Aedes and its internals; services get the plain shapes of broker/types/mqtt.ts (docs/mqtt-adapter.md)'
// Regular expressions, anchored: a `group` glob 'aedes/*' would also match qlobber/aedes/..., which is qlobber's.
const aedesCore = { regex: '^(aedes|aedes-packet|mqemitter|mqtt-packet)(/.*)?$', message: aedesOnly }
const aedesAll = { regex: '^(aedes(-[^/]*)?|mqemitter|mqtt-packet)(/.*)?$', message: aedesOnly }

/*
 * The dashboard (dashboard/, docs/operations.md) is plain browser ES modules
 * served as written: browser globals, no Node. Listed here rather than taken
 * from the `globals` package, which is not a dependency of ours.
 */
const browserGlobals = Object.fromEntries([
  'window', 'document', 'location', 'history', 'navigator', 'sessionStorage', 'localStorage',
  'addEventListener', 'removeEventListener', 'fetch', 'AbortController', 'Headers', 'Response', 'URL', 'URLSearchParams',
  'TextEncoder', 'TextDecoder', 'TextDecoderStream', 'ResizeObserver', 'requestAnimationFrame', 'cancelAnimationFrame',
  'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'btoa', 'atob', 'confirm', 'alert', 'console'
].map((name) => [name, 'readonly']))

export default tseslint.config(
  { ignores: ['dist/**', '.bench-build/**', 'data/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error'
    }
  },
  layer(['protocol/**/*.ts'], [
    folder('broker', wireOnly),
    folder('client', wireOnly),
    { regex: '^(aedes(-[^/]*)?|mqtt|mqtt-packet|mqemitter(-[^/]*)?|level|classic-level|memory-level|abstract-level)(/.*)?$', message: wireOnly }
  ]),
  layer(['broker/**/*.ts'], [brokerNotClient, aedesAll], ['broker/mqtt/**', 'broker/persistence/**']),
  layer(['broker/mqtt/**/*.ts'], [brokerNotClient]),
  layer(['broker/persistence/**/*.ts'], [brokerNotClient, aedesCore]),
  {
    files: ['dashboard/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: browserGlobals },
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!preact$|preact/hooks$|htm$|uplot$|\\./[a-z0-9-]+\\.js$)', message: 'the dashboard imports only the import map\'s names (index.html) and its own flat files (./name.js)' }]
      }]
    }
  },
  layer(['client/**/*.ts'], [
    folder('broker', 'client/ may not import broker/: share the code through protocol/ (docs/architecture.md)'),
    { regex: '^(aedes(-[^/]*)?|mqemitter(-[^/]*)?|level|classic-level|memory-level|abstract-level)(/.*)?$', message: 'client/ speaks MQTT through mqtt.js only; the broker side stays in broker/' }
  ])
)
