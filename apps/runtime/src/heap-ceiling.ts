import { Worker } from 'node:worker_threads'

/**
 * The V8 old-space ceiling `nvisy run` and `nvisy serve` run under unless told otherwise. Node
 * sizes its heap from the machine's memory and grows it lazily, so a copy of a million rows
 * held 566 MB of RSS that were only headroom; with a ceiling the garbage collector works
 * within it. The pipeline's own buffers are bounded by batch bytes and queue capacity, far
 * below this.
 */
export const DEFAULT_HEAP_CEILING_MB = 192

/** The worker's young generation (V8's nursery) in MB. */
const YOUNG_GENERATION_MB = 48

/** The commands that move data for a long time and so run under the ceiling. */
const CEILING_COMMANDS = new Set(['run', 'serve'])

/**
 * True for `run` and `serve` (not their --help): the commands that load providers and their
 * SDKs and move data, which get the heap ceiling and the compile cache (compile-cache.ts).
 */
export function movesData(args: readonly string[]): boolean {
  return CEILING_COMMANDS.has(args[0] ?? '') && !args.includes('--help') && !args.includes('-h')
}

export class HeapCeilingError extends Error {}

/**
 * The old-space ceiling in MB for this invocation, or undefined to run in this thread as it is:
 * another command, `NVISY_MAX_HEAP_MB=0`, or a ceiling the user set for Node already
 * (`--max-old-space-size` in the node options or `NODE_OPTIONS`), which wins.
 */
export function heapCeilingMb(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  execArgv: readonly string[],
): number | undefined {
  if (!movesData(args)) return undefined
  const nodeOptions = `${execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`
  if (/--max[-_]old[-_]space[-_]size/.test(nodeOptions)) return undefined
  const setting = env.NVISY_MAX_HEAP_MB?.trim()
  if (setting === undefined || setting === '') return DEFAULT_HEAP_CEILING_MB
  if (!/^\d+$/.test(setting)) {
    throw new HeapCeilingError(
      `NVISY_MAX_HEAP_MB must be a whole number of megabytes (0 for no ceiling), got ${JSON.stringify(setting)}`,
    )
  }
  const mb = Number(setting)
  if (mb === 0) return undefined
  if (mb < 64) {
    throw new HeapCeilingError(
      `NVISY_MAX_HEAP_MB must be at least 64 (or 0 for no ceiling), got ${mb}`,
    )
  }
  return mb
}

/** What the worker is given: the CLI arguments and how its output is shown. */
export interface CeilingWorkerData {
  args: string[]
  stderrIsTTY: boolean
}

/**
 * Run the CLI in a worker thread whose old space is capped at `ceilingMb`. Signals stay with
 * this thread: the first SIGINT/SIGTERM is passed on (the run stops and saves its checkpoint),
 * a second exits at once, as without a ceiling. A SIGKILL ends both, like one process. A run
 * that outgrows the ceiling ends with exit 1 and a message saying how to raise it, not a V8
 * crash report.
 */
export async function runUnderHeapCeiling(
  ceilingMb: number,
  args: string[],
  io: {
    stderr: { write(text: string): unknown; isTTY?: boolean }
    onSignal(handler: (name: NodeJS.Signals) => void): () => void
  },
): Promise<number> {
  const data: CeilingWorkerData = { args, stderrIsTTY: io.stderr.isTTY === true }
  const worker = new Worker(new URL('./cli-worker.js', import.meta.url), {
    workerData: data,
    // A young generation of 48 MB: per-row objects die young, and a larger nursery lets them
    // die there instead of being promoted into the capped old space; a larger one adds RSS
    // without speed, a smaller one costs CPU (bench/peers-pgloader, see the README's Memory).
    resourceLimits: {
      maxOldGenerationSizeMb: ceilingMb,
      maxYoungGenerationSizeMb: YOUNG_GENERATION_MB,
    },
    stdout: false,
    stderr: false,
  })
  const off = io.onSignal((name) => worker.postMessage({ type: 'signal', name }))
  try {
    return await new Promise<number>((resolve) => {
      let failed: Error | undefined
      worker.on('error', (error: Error & { code?: string }) => {
        failed = error
        if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
          io.stderr.write(
            `nvisy: the run reached its heap ceiling of ${ceilingMb} MB and was stopped (its checkpoint is kept: a resumed run goes on from it). Raise it with NVISY_MAX_HEAP_MB (0 for no ceiling), or lower a sink's batch.maxBytes or options.queueCapacity.\n`,
          )
        } else {
          io.stderr.write(`nvisy: ${error.stack ?? error.message}\n`)
        }
      })
      worker.on('exit', (code) => resolve(failed ? 1 : code))
    })
  } finally {
    off()
  }
}
