// Runs the conformance kit against deliberately broken providers. Not part of the normal
// test run: src/catches-broken.test.ts starts it and checks that each bug is caught.
import { defineConfig } from 'vitest/config'
import { workspaceAliases } from '../../../../vitest.shared.js'

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    root: import.meta.dirname,
    include: ['*.conformance.ts'],
    testTimeout: 20_000,
  },
})
