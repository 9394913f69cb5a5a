// `nvisy run pipeline.json` as a user runs it: the built CLI in its own process, the run
// summary (JSON on stdout), the exit code and the log lines (JSON on stderr).
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '../../../../vitest.shared.js'

export const CLI = join(repoRoot, 'apps/runtime/dist/cli.js')
/** Names the provider packages; they resolve from this package's node_modules. */
export const CONFIG = join(repoRoot, 'packages/integration-tests/fixtures/nvisy.config.json')

export interface RunSummary {
  runId: string
  status: string
  stats: {
    nodes: Record<string, { items: number; bytes: number; failed: number }>
    failedItems: number
    refusedItems?: number
    deadLettered?: number
  }
  error?: { kind: string; message: string }
}

export interface CliRun {
  code: number | null
  summary: RunSummary | undefined
  stdout: string
  stderr: string
}

export async function scratchDir(label: string) {
  const dir = await mkdtemp(join(tmpdir(), `nvisy-matrix-${label}-`))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Write the pipeline next to a fresh checkpoint file and run it to the end. */
export async function runPipeline(
  dir: string,
  pipeline: object,
  timeoutMs = 240_000,
): Promise<CliRun> {
  const id = (pipeline as { id: string }).id
  const file = join(dir, `${id}.json`)
  await writeFile(file, JSON.stringify(pipeline, null, 2))
  const child = spawn(
    process.execPath,
    [
      CLI,
      'run',
      file,
      '--config',
      CONFIG,
      '--checkpoints',
      join(dir, `${id}.checkpoints.json`),
      '--no-resume',
      '--log-level',
      'info',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-200_000)
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  let summary: RunSummary | undefined
  try {
    summary = JSON.parse(stdout) as RunSummary
  } catch {
    summary = undefined
  }
  return { code, summary, stdout, stderr }
}

/** The run's item failures as its log reports them (`item failed` lines on stderr). */
export function itemFailures(
  run: CliRun,
): { nodeId: string; item: string; kind: string; message: string }[] {
  const failures: { nodeId: string; item: string; kind: string; message: string }[] = []
  for (const line of run.stderr.split('\n')) {
    if (!line.startsWith('{')) continue
    let entry: {
      msg?: string
      nodeId?: string
      item?: string
      err?: { kind?: string; message?: string }
    }
    try {
      entry = JSON.parse(line)
    } catch {
      continue
    }
    if (entry.msg !== 'item failed') continue
    failures.push({
      nodeId: String(entry.nodeId),
      item: String(entry.item),
      kind: String(entry.err?.kind),
      message: String(entry.err?.message),
    })
  }
  return failures
}

/** A readable account of a run for assertion messages. */
export function describeRun(run: CliRun): string {
  return `exit ${run.code}; summary ${run.stdout.slice(0, 3000)}; stderr tail ${run.stderr.slice(-3000)}`
}
