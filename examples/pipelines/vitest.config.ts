// The example pipelines, each run by `nvisy run <file>` from this folder against the local
// services. The global setup builds what the CLI loads (the runtime and the providers the
// examples name; turbo caches it). Files run one at a time: the machine is shared.
import { defineConfig } from 'vitest/config'
import { workspaceAliases } from '../../vitest.shared.js'

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    name: 'example-pipelines',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
})
