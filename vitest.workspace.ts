// The list of test projects. Vitest 4 no longer reads this file by itself: the root
// vitest.config.ts imports it as `test.projects`.
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { TestProjectConfiguration } from 'vitest/config'
import { workspaceAliases, workspacePackages } from './vitest.shared.js'

const aliases = workspaceAliases()

export const projects: TestProjectConfiguration[] = workspacePackages().map((pkg) => {
  // A package with its own vitest.config.ts (global setup, longer timeouts) uses it.
  const own = join(pkg.dir, 'vitest.config.ts')
  if (existsSync(own)) return own
  return {
    resolve: { alias: aliases },
    test: {
      name: basename(pkg.dir),
      root: pkg.dir,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  }
})

export default projects
