// `nvisy serve` processes of one queue group, as a deployment runs them: the built CLI, one
// seed, the test file's own subjects, stream and buckets.
import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import type { DispatcherNaming } from '../../nats/index.js'
import { NATS_URL, type ServerClient } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const runtimeDir = join(here, '..', '..', '..')
const repoRoot = join(runtimeDir, '..', '..')
const CLI = join(runtimeDir, 'dist', 'cli.js')

export interface Serve {
  child: ChildProcess
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the instance id once the dispatcher is ready. */
  ready(): Promise<string>
}

export interface ServeGroupOptions {
  naming: DispatcherNaming
  serverPublicKey: string
  runtimeSeed: string
  /** A config file under __fixtures__ naming the providers to load. */
  config: string
  extraArgs?: string[]
}

export function serveInstance(options: ServeGroupOptions): Serve {
  const { naming } = options
  const args = [
    CLI,
    'serve',
    '--config',
    join(here, options.config),
    '--server-key',
    options.serverPublicKey,
    '--subject-prefix',
    naming.prefix,
    '--events-stream',
    naming.eventsStream,
    '--checkpoint-bucket',
    naming.checkpointBucket,
    '--queue-group',
    naming.queueGroup,
    ...(naming.nonceBucket ? ['--nonce-bucket', naming.nonceBucket] : []),
    ...(naming.workStream ? ['--work-stream', naming.workStream] : []),
    ...(naming.runsBucket ? ['--runs-bucket', naming.runsBucket] : []),
    '--log-level',
    'info',
    ...(options.extraArgs ?? []),
  ]
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, NVISY_NATS_URL: NATS_URL, NVISY_RUNTIME_SEED: options.runtimeSeed },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const ready = async () => {
    const deadline = Date.now() + 30_000
    for (;;) {
      const line = err.split('\n').find((l) => l.includes('dispatcher ready'))
      const match = line && /"instanceId":"([^"]+)"/.exec(line)
      if (match) return match[1]!
      if (child.exitCode !== null) throw new Error(`nvisy serve exited ${child.exitCode}:\n${err}`)
      if (Date.now() > deadline) throw new Error(`nvisy serve not ready:\n${err}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return { child, stderr: () => err, exited, ready }
}

/** Kill whatever is still running. */
export function killAll(instances: readonly Serve[]): void {
  for (const run of instances)
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
}

/**
 * Wait until one partition of a partitioned run has checkpointed `checkpoints` times, then
 * SIGKILL the instance running it (`ids[i]` is the instance id of `instances[i]`). Returns
 * which instance died and which partition it was running.
 */
export async function killMidPartition(
  server: ServerClient,
  runId: string,
  instances: readonly Serve[],
  ids: readonly string[],
  checkpoints: number,
): Promise<{ instanceId: string; index: number }> {
  const seen = new Map<number, number>()
  const events = await server.runEvents(runId, {
    partitioned: true,
    timeoutMs: 120_000,
    until: (event: any) => {
      if (event.type !== 'checkpoint' || !event.partition) return false
      const n = (seen.get(event.partition.index) ?? 0) + 1
      seen.set(event.partition.index, n)
      return n >= checkpoints
    },
  })
  const last = events.at(-1) as any
  expect(last?.type, 'a partition checkpointed while the run went on').toBe('checkpoint')
  const instanceId: string = last.partition.instanceId
  const victim = instances[ids.indexOf(instanceId)]
  expect(victim, `instance ${instanceId} is one of ours`).toBeDefined()
  victim!.child.kill('SIGKILL')
  expect((await victim!.exited).signal).toBe('SIGKILL')
  return { instanceId, index: last.partition.index }
}
