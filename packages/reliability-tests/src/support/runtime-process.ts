// The runtime as a real process: `node apps/runtime/dist/cli.js run ...`, so a test can
// SIGKILL it mid-run the way a crash or an OOM kill would.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Pipeline } from '@nvisy/protocol'
import { repoRoot } from '../../../../vitest.shared.js'

export const CLI = join(repoRoot, 'apps/runtime/dist/cli.js')
/** Names the built provider packages; they resolve from this package's node_modules. */
export const CONFIG = join(repoRoot, 'packages/reliability-tests/fixtures/nvisy.config.json')

export interface RunProcess {
  child: ChildProcess
  /** stdout so far (the run summary is JSON there at the end). */
  stdout(): string
  /** stderr so far (JSON log lines). */
  stderr(): string
  /** Resolves with the exit code, or the signal that killed it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** A scratch directory per test file, removed by `cleanup()`. */
export async function scratch(label: string): Promise<{
  dir: string
  cleanup: () => Promise<void>
}> {
  const dir = await mkdtemp(join(tmpdir(), `nvisy-reliability-${label}-`))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export async function writePipeline(dir: string, name: string, pipeline: Pipeline) {
  const file = join(dir, `${name}.json`)
  await writeFile(file, JSON.stringify(pipeline, null, 2))
  return file
}

/** Start `nvisy run <pipeline> --checkpoints <file>` with the fixture's provider config. */
export function startRun(
  pipelineFile: string,
  checkpointsFile: string,
  options: { runId?: string; env?: NodeJS.ProcessEnv; cwd?: string; extraArgs?: string[] } = {},
): RunProcess {
  const args = [
    CLI,
    'run',
    pipelineFile,
    '--config',
    CONFIG,
    '--checkpoints',
    checkpointsFile,
    '--log-level',
    'info',
    ...(options.runId ? ['--run-id', options.runId] : []),
    ...(options.extraArgs ?? []),
  ]
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    // Keep the tail only: a long run logs a progress line per second.
    err = (err + chunk).slice(-200_000)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** Run to the end and return the summary printed on stdout. */
export async function runToEnd(
  pipelineFile: string,
  checkpointsFile: string,
  options: Parameters<typeof startRun>[2] = {},
): Promise<{ code: number | null; summary: RunSummaryJson; stderr: string }> {
  const run = startRun(pipelineFile, checkpointsFile, options)
  const { code } = await run.exited
  let summary: RunSummaryJson
  try {
    summary = JSON.parse(run.stdout()) as RunSummaryJson
  } catch {
    throw new Error(
      `nvisy run exited ${code} without a JSON summary.\nstdout: ${run.stdout()}\nstderr tail: ${run.stderr().slice(-4000)}`,
    )
  }
  return { code, summary, stderr: run.stderr() }
}

export interface RunSummaryJson {
  runId: string
  pipelineId: string
  status: 'completed' | 'failed' | 'cancelled'
  stats: {
    nodes: Record<string, { items: number; bytes: number; failed: number }>
    failedItems: number
    durationMs: number
  }
  error?: { kind: string; message: string }
  checkpoints: Record<string, unknown>
}

/** Poll `probe` until it returns true; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await probe()) return
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** SIGKILL: no handler runs, nothing is flushed, like a crash. */
export async function kill9(run: RunProcess) {
  run.child.kill('SIGKILL')
  const result = await run.exited
  return result
}
