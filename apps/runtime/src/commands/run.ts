import { randomUUID } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { MAX_PARTITIONS, type ValidationIssue } from '@nvisy/provider-core'
import { type Keyring, LocalConnectionStore } from '@nvisy/vault'
import { FileCheckpointStore } from '../checkpoints/file-checkpoint-store.js'
import {
  applyStoredConnections,
  connectionStorePath,
  localConnectionResolver,
  storeDestinationDigest,
  usesStoredConnections,
} from '../connections.js'
import { executePipeline } from '../executor/execute.js'
import { executePartitioned } from '../executor/partitioned.js'
import type { ExecuteOptions, RunEvent } from '../executor/types.js'
import { validatePipeline } from '../executor/validate.js'
import { createLogger } from '../logger.js'
import type { Pipeline } from '../pipeline-types.js'
import { ProgressLine } from '../progress.js'
import type { MapProviderRegistry } from '../registry.js'
import {
  type CliIo,
  COMMON_HELP,
  commonOptions,
  EXIT,
  json,
  KEY_HELP,
  loadPipeline,
  printIssues,
  registryFor,
  storeKeyring,
  UsageError,
} from './shared.js'

const LOG_FORMATS = ['auto', 'json', 'pretty']

export const RUN_HELP = `Usage: nvisy run <pipeline.json> [options]

Runs a pipeline in this process (no NATS). Resumes from its checkpoints unless --no-resume.
  --checkpoints file    checkpoint file (default .nvisy/checkpoints.json, created mode 0600)
  --no-resume           start from the beginning
  --partitions N        split the (single) source's stream into up to N disjoint partitions (key
                        ranges) read at once in this process, each with its own checkpoint; the
                        plan is kept with the checkpoints: a resumed run resumes each partition
                        where it stopped and does not read a completed one again. A source that
                        cannot split runs as one. 1 to ${MAX_PARTITIONS}
  --run-id id           the run id (default a new UUID)
  --log-level level     debug, info, warn or error
  --log-format f        auto (default: a live progress line and a final table on a terminal,
                        JSON lines otherwise), json, or pretty
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 completed, 1 failed or partial, 2 usage or configuration error, 3 cancelled.
`

export async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...commonOptions,
      checkpoints: { type: 'string', default: '.nvisy/checkpoints.json' },
      'no-resume': { type: 'boolean' },
      partitions: { type: 'string' },
      'run-id': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
    },
    allowPositionals: true,
  })
  if (positionals.length !== 1) throw new UsageError('nvisy run takes exactly one pipeline file')
  const logFormat = values['log-format'] ?? 'auto'
  if (!LOG_FORMATS.includes(logFormat))
    throw new UsageError(
      `--log-format must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(logFormat)}`,
    )
  const partitions = values.partitions === undefined ? undefined : Number(values.partitions)
  if (
    partitions !== undefined &&
    (!/^\d+$/.test(values.partitions!) || partitions < 1 || partitions > MAX_PARTITIONS)
  )
    throw new UsageError(
      `--partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${JSON.stringify(values.partitions)}`,
    )
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  let store: LocalConnectionStore | undefined
  let keyring: Keyring | undefined
  try {
    let storeIssues: ValidationIssue[] = []
    if (usesStoredConnections(pipeline)) {
      // The key is loaded (and checked) now; credentials are decrypted only when the executor
      // resolves each node's connection, and the key is wiped when the run ends.
      keyring = storeKeyring(values, io)
      store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
      storeIssues = await applyStoredConnections(pipeline, store, registry)
    }
    const issues = storeIssues.length > 0 ? storeIssues : validatePipeline(pipeline, registry)
    if (issues.length > 0) {
      printIssues(io, issues)
      return EXIT.usage
    }
    return await executeRun(pipeline, registry, values, io, store, partitions)
  } finally {
    keyring?.destroy()
  }
}

async function executeRun(
  pipeline: Pipeline,
  registry: MapProviderRegistry,
  values: {
    checkpoints: string
    'no-resume'?: boolean | undefined
    'run-id'?: string | undefined
    'log-level'?: string | undefined
    'log-format'?: string | undefined
  },
  io: CliIo,
  store: LocalConnectionStore | undefined,
  partitions?: number | undefined,
): Promise<number> {
  // A live progress line on a terminal, JSON log lines otherwise (or as --log-format says).
  const format = values['log-format'] ?? 'auto'
  const tty = format === 'auto' ? io.stderr.isTTY === true : format === 'pretty'
  const logger = createLogger(io.stderr, values['log-level'] ?? (tty ? 'warn' : 'info'))
  const progress = tty ? new ProgressLine((text) => io.stderr.write(text)) : undefined
  const runId = values['run-id'] ?? randomUUID()
  const onEvent = (event: RunEvent) => {
    if (event.type === 'progress') {
      if (progress) progress.update(event.nodes)
      else logger.info({ event: 'progress', nodes: event.nodes }, 'progress')
      return
    }
    if (progress && event.type === 'item_failed') {
      progress.end()
      io.stderr.write(`item failed at ${event.nodeId}: ${event.item}: ${event.error.message}\n`)
      return
    }
    if (!progress) logger.info({ event }, event.type)
  }
  const run = (options: ExecuteOptions) =>
    partitions === undefined
      ? executePipeline(options)
      : executePartitioned({ ...options, partitions })
  const summary = await run({
    runId,
    pipeline,
    registry,
    resolveConnection: localConnectionResolver(io.env, { store, registry }),
    checkpoints: new FileCheckpointStore(resolve(io.cwd, values.checkpoints)),
    onEvent,
    signal: io.signal,
    resume: values['no-resume'] !== true,
    logger,
  })
  progress?.end()
  io.stdout.write(json({ runId, pipelineId: pipeline.id, ...summary }))
  return runExitCode(summary as { status: string; error?: { kind?: string; message?: string } }, io)
}

/**
 * 0 only for 'completed' (every item arrived); 3 for 'cancelled'; 2 for a run that failed on
 * its configuration; 1 for anything else: 'failed', 'partial' (items refused under a failure
 * budget), or a status this CLI does not know.
 */
export function runExitCode(
  summary: { status: string; error?: { kind?: string; message?: string } | undefined },
  io: Pick<CliIo, 'stderr'>,
): number {
  switch (summary.status) {
    case 'completed':
      return EXIT.completed
    case 'cancelled':
      return EXIT.cancelled
    case 'failed':
      io.stderr.write(`nvisy: run failed: ${summary.error?.message ?? 'unknown error'}\n`)
      return summary.error?.kind === 'config' ? EXIT.usage : EXIT.failed
    default:
      io.stderr.write(
        `nvisy: run ended ${summary.status}: not every item arrived (see the summary's counts)\n`,
      )
      return EXIT.failed
  }
}
