// Builds what the matrix spawns: the runtime CLI and the provider packages it loads by name
// (turbo caches the build). NVISY_INTEGRATION_SKIP_BUILD=1 uses what is already built.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { repoRoot } from '../../../vitest.shared.js'

const run = promisify(execFile)

const BUILT = [
  '@nvisy/runtime',
  '@nvisy/provider-postgres',
  '@nvisy/provider-mysql',
  '@nvisy/provider-fs',
  '@nvisy/provider-mongodb',
  '@nvisy/provider-nats',
  '@nvisy/provider-redis',
]

export default async function setup(): Promise<void> {
  if (process.env.NVISY_INTEGRATION_SKIP_BUILD === '1') return
  const filters = BUILT.flatMap((name) => [`--filter=${name}...`])
  try {
    await run('pnpm', ['turbo', 'run', 'build', ...filters, '--output-logs=errors-only'], {
      cwd: repoRoot,
      maxBuffer: 64 << 20,
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(
      `building the runtime and providers for the integration tests failed:\n${stdout ?? ''}\n${stderr ?? ''}`,
    )
  }
}
