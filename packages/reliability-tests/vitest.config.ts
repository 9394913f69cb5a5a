// Fault-injection tests spawn the built runtime (apps/runtime/dist/cli.js) and kill it, so
// the global setup builds the runtime and the providers first (turbo caches the build).
// Tests run one file at a time: each pushes the 2-core machine hard on its own.
import { defineConfig } from 'vitest/config'
import { workspaceAliases } from '../../vitest.shared.js'

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    name: 'reliability-tests',
    root: import.meta.dirname,
    include: ['src/**/*.test.ts'],
    globalSetup: ['./src/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    pool: 'forks',
    // The fuzz test measures the heap after a forced GC.
    execArgv: ['--expose-gc'],
  },
})
