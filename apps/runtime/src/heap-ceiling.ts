import { setFlagsFromString } from 'node:v8'
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

/**
 * The floor under the worker's old-generation allocation limit in MB (V8's
 * `--initial-old-space-size`, which V8 keeps as the least limit it computes after a full GC).
 *
 * V8 sets the limit from the live heap (about 18 MB in an object copy, so a limit near 41 MB)
 * and counts the external memory allocated since the last full GC against it: the socket
 * chunks of a download (ArrayBuffers outside the heap, freed only by a later GC) used up that
 * slack every few MB of transfer, and a 768 MiB S3 -> S3 copy ran 58-79 full GCs, a sixth of
 * its CPU. With a 52 MB floor it ran 27-32 and took 15-25% less CPU (Node 20; Node 22 alike),
 * for about 15-20 MB more peak RSS (the garbage waits longer). Higher floors cut a little more
 * CPU but cost more RSS: 56 MB peaked at 243-257 MB and 64 MB at 251-266, against the 256 MB
 * the ceiling keeps to. A row pipeline holds more than the floor live, so its limit and RSS
 * stay as they were. Not on V8 13 (Node 24): there a floor of 56 MB cut CPU by a fifth but
 * raised the copy's peak RSS from 255 to 287 MB. See the README's Memory.
 */
export const OLD_GENERATION_FLOOR_MB = 52

/** The commands that move data for a long time and so run under the ceiling. */
const CEILING_COMMANDS = new Set(['run', 'serve'])

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
  if (!CEILING_COMMANDS.has(args[0] ?? '')) return undefined
  if (args.includes('--help') || args.includes('-h')) return undefined
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

/**
 * The V8 flag that sets the old-generation floor for a worker under a ceiling of `ceilingMb`,
 * or undefined where it is not set: V8 13 and later (measured: more RSS than the ceiling
 * allows), a floor the user set for Node already (`--initial-old-space-size` in the node
 * options or `NODE_OPTIONS`, which wins), or a ceiling not above the floor.
 */
export function oldGenerationFloorFlag(
  ceilingMb: number,
  v8Version: string,
  env: Readonly<Record<string, string | undefined>>,
  execArgv: readonly string[],
): string | undefined {
  const v8Major = Number.parseInt(v8Version, 10)
  if (!(v8Major < 13)) return undefined
  if (ceilingMb <= OLD_GENERATION_FLOOR_MB) return undefined
  const nodeOptions = `${execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`
  if (/--initial[-_]old[-_]space[-_]size/.test(nodeOptions)) return undefined
  return `--initial-old-space-size=${OLD_GENERATION_FLOOR_MB}`
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
  // V8 reads its heap flags when an isolate is created: set before the worker's exists, the
  // floor applies to the worker's heap (this thread's was configured at start-up).
  const floor = oldGenerationFloorFlag(
    ceilingMb,
    process.versions.v8,
    process.env,
    process.execArgv,
  )
  if (floor) setFlagsFromString(floor)
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
