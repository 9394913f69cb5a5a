// Builds what the examples' CLI runs load: the runtime and every provider named in
// nvisy.config.json (turbo caches it). NVISY_INTEGRATION_SKIP_BUILD=1 uses what is built.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '../../../vitest.shared.js'

const run = promisify(execFile)

export default async function setup(): Promise<void> {
  if (process.env.NVISY_INTEGRATION_SKIP_BUILD === '1') return
  const config = JSON.parse(
    readFileSync(join(repoRoot, 'examples/pipelines/nvisy.config.json'), 'utf8'),
  ) as { providers: string[] }
  const filters = ['@nvisy/runtime', ...config.providers].map((name) => `--filter=${name}`)
  try {
    await run('pnpm', ['turbo', 'run', 'build', ...filters, '--output-logs=errors-only'], {
      cwd: repoRoot,
      maxBuffer: 64 << 20,
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(
      `building the runtime and providers for the example pipelines failed:\n${stdout ?? ''}\n${stderr ?? ''}`,
    )
  }
}
