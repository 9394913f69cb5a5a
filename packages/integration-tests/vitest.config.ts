// Cross-provider tests. The exactness matrix runs the built CLI (`nvisy run`), so the global
// setup builds the runtime and the providers first (turbo caches it). Files run one at a time:
// each copies tens of thousands of rows between real servers on a shared 2-core machine.
import { defineConfig } from 'vitest/config'
import { workspaceAliases } from '../../vitest.shared.js'

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    name: 'integration-tests',
    root: import.meta.dirname,
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./src/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
})
