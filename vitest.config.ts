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
    // `npm run coverage`. Code run only in child processes (the brokers that
    // the kill -9 tests start, the CLI) is not measured.
    coverage: {
      provider: 'v8',
      include: ['broker/**/*.ts', 'client/**/*.ts', 'protocol/**/*.ts'],
      exclude: ['**/*.d.ts', '**/generated/**'],
      reporter: ['text-summary', 'text', 'html', 'json-summary'],
      // a failing test should not hide the figures of the rest
      reportOnFailure: true
    }
  }
})
