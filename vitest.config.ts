import { defineConfig } from 'vitest/config'
import { projects } from './vitest.workspace.js'

export default defineConfig({
  test: {
    projects,
    // Starts the S3 server and GCS emulator when a selected project needs them.
    globalSetup: ['./test/global-setup.ts'],
    // The JSON report feeds scripts/test-summary.mjs (`N passed, N failed`) in CI.
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
  },
})
