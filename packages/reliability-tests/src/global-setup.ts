// Builds what the fault-injection tests spawn: the runtime CLI and the provider packages it
// loads by name (turbo caches the build, so a second run costs a few seconds), and starts
// the local S3 server when none answers and none is configured (as the root setup does for
// the other S3 suites). PostgreSQL and NATS are the machine's own services.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '../../../vitest.shared.js'

const run = promisify(execFile)

const BUILT = [
  '@nvisy/runtime',
  '@nvisy/provider-postgres',
  '@nvisy/provider-mysql',
  '@nvisy/provider-s3',
  '@nvisy/provider-fs',
  '@nvisy/provider-nats',
]

const S3_SCRIPT = join(repoRoot, 'scripts/services/s3-server.sh')

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await response.arrayBuffer()
    return true
  } catch {
    return false
  }
}

/** Start the local Ceph RGW if needed; returns a teardown that stops it if this setup started it. */
async function ensureS3(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.NVISY_TEST_S3_ENDPOINT || (await answers('http://127.0.0.1:7480/'))) return
  try {
    console.log('[nvisy] starting the S3 server (Ceph RGW) for the reliability tests...')
    await run('bash', [S3_SCRIPT, 'start'], { maxBuffer: 16 << 20 })
  } catch (error) {
    // The S3 suite then skips with a message (or fails under NVISY_REQUIRE_SERVICES).
    console.warn(
      `[nvisy] could not start the S3 server: ${(error as Error).message.split('\n')[0]}`,
    )
    return
  }
  return async () => {
    if (process.env.NVISY_KEEP_TEST_SERVERS === '1') return
    await run('bash', [S3_SCRIPT, 'stop']).catch(() => {})
  }
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.NVISY_RELIABILITY_SKIP_BUILD !== '1') {
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
        `building the runtime and providers for the reliability tests failed:\n${stdout ?? ''}\n${stderr ?? ''}`,
      )
    }
  }
  const cli = join(repoRoot, 'apps/runtime/dist/cli.js')
  if (!existsSync(cli)) throw new Error(`${cli} is missing after the build`)
  return ensureS3()
}
