import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/**
 * The layers and what each may import (docs/architecture.md): `protocol/` is
 * the wire contract and imports neither side; `broker/` and `client/` import
 * `protocol/` and never each other. A wrong import fails `npm run lint`
 * (test/layers.test.ts shows it failing).
 */
const layer = (files, forbidden) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: forbidden }] }
})
const folder = (name, message) => ({ group: [`**/${name}/*`, `**/${name}`], message })
const wireOnly = 'protocol/ is the wire contract: it imports neither broker/ nor client/, nor an MQTT library'

export default tseslint.config(
  { ignores: ['dist/**', 'data/**', 'node_modules/**', 'coverage/**'] },
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
    { group: ['aedes', 'aedes/*', 'aedes-*', 'mqtt', 'mqtt/*', 'mqemitter*'], message: wireOnly }
  ]),
  layer(['broker/**/*.ts'], [folder('client', 'broker/ may not import client/: share the code through protocol/ (docs/architecture.md)')]),
  layer(['client/**/*.ts'], [folder('broker', 'client/ may not import broker/: share the code through protocol/ (docs/architecture.md)')])
)
