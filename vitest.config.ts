import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Broker tests start real brokers, LevelDB stores and child processes.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Two cores: keep files in separate forks but do not oversubscribe.
    pool: 'forks',
    maxWorkers: 2,
    coverage: { provider: 'v8', include: ['broker/**', 'client/**'] }
  }
})
