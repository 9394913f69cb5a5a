// Starts the test servers that this machine kind does not run by itself (the S3 server,
// the GCS emulator) when a test needs them and no external one is configured. PostgreSQL,
// MariaDB, Redis and NATS are started before every session and by .ci/run.
import { execFile } from 'node:child_process'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'
import { repoRoot } from '../vitest.shared.js'

const run = promisify(execFile)

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await response.arrayBuffer()
    return true
  } catch {
    return false
  }
}

function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (match) env[match[1]!] = match[2]!.replace(/^['"]|['"]$/g, '')
  }
  return env
}

interface Service {
  name: string
  /** Projects whose tests use it. */
  projects: string[]
  configured: () => boolean
  url: string
  start: () => Promise<Record<string, string>>
  stop: () => Promise<void>
  exportEnv: (env: Record<string, string>) => void
}

const s3Script = join(repoRoot, 'scripts/services/s3-server.sh')
const gcsScript = join(repoRoot, 'scripts/services/gcs-emulator.sh')
// Outside the repository: `pnpm install` prunes node_modules, and the emulator's own npm
// install (firebase-tools, ~240 MB) is worth keeping between runs.
const gcsCache =
  process.env.NVISY_GCS_EMULATOR_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvisy', 'gcs-emulator')

const services: Service[] = [
  {
    name: 'S3 server (Ceph RADOS Gateway)',
    projects: [
      'provider-s3',
      'runtime',
      'integration-tests',
      'reliability-tests',
      'example-pipelines',
    ],
    configured: () => Boolean(process.env.NVISY_TEST_S3_ENDPOINT),
    url: 'http://127.0.0.1:7480/',
    start: async () =>
      parseExports((await run('bash', [s3Script, 'start'], { maxBuffer: 16 << 20 })).stdout),
    stop: async () => {
      await run('bash', [s3Script, 'stop']).catch(() => {})
    },
    exportEnv: (env) => {
      process.env.NVISY_TEST_S3_ENDPOINT ??= env.S3_ENDPOINT ?? 'http://127.0.0.1:7480'
      process.env.NVISY_TEST_S3_ACCESS_KEY_ID ??= env.AWS_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001'
      process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ??=
        env.AWS_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001'
      process.env.NVISY_TEST_S3_REGION ??= env.AWS_REGION ?? 'us-east-1'
    },
  },
  {
    name: 'GCS emulator (firebase-tools)',
    projects: ['provider-gcs', 'runtime', 'integration-tests', 'example-pipelines'],
    configured: () =>
      Boolean(process.env.NVISY_TEST_GCS_ENDPOINT || process.env.NVISY_TEST_GCS_CREDENTIALS),
    url: 'http://127.0.0.1:9199/',
    start: async () =>
      parseExports(
        (await run('bash', [gcsScript, 'start', gcsCache], { maxBuffer: 16 << 20 })).stdout,
      ),
    stop: async () => {
      await run('bash', [gcsScript, 'stop', gcsCache]).catch(() => {})
    },
    exportEnv: (env) => {
      process.env.NVISY_TEST_GCS_ENDPOINT ??= env.STORAGE_EMULATOR_HOST ?? 'http://127.0.0.1:9199'
      process.env.NVISY_TEST_GCS_PROJECT ??= env.GCLOUD_PROJECT ?? 'demo-nvisy'
    },
  },
]

export default async function setup(project: TestProject) {
  const selected = new Set(project.vitest.projects.map((p) => p.name))
  const started: Service[] = []
  for (const service of services) {
    if (service.configured() || !service.projects.some((name) => selected.has(name))) continue
    if (await answers(service.url)) {
      service.exportEnv({})
      continue
    }
    try {
      console.log(`[nvisy] starting ${service.name} for the tests...`)
      const env = await service.start()
      service.exportEnv(env)
      started.push(service)
    } catch (error) {
      // The suites that need it skip with a message (or fail under NVISY_REQUIRE_SERVICES).
      console.warn(
        `[nvisy] could not start ${service.name}: ${(error as Error).message.split('\n')[0]}`,
      )
    }
  }
  return async () => {
    if (process.env.NVISY_KEEP_TEST_SERVERS === '1') return
    for (const service of started) await service.stop()
  }
}
