import { formatIssues, ProviderError } from '@nvisy/provider-core'
import { checkpointByTime, flushCheckpoint } from './checkpoints.js'
import { DEFAULTS } from './defaults.js'
import { readSource } from './read-sources.js'
import { RunState, serialize } from './run-state.js'
import { setUpRun } from './setup.js'
import type { ExecuteOptions, RunSummary } from './types.js'
import { validatePipeline } from './validate.js'
import { batchEdge, writeEdge } from './write-sinks.js'

// The executor's parts, by job (this file is the entry and a run's lifecycle):
// setup.ts (graph, connections, server-side copies), prepare-sinks.ts, offsets.ts,
// read-sources.ts, buffered-body.ts, write-sinks.ts, failure-routing.ts, checkpoints.ts.
export { DEFAULTS } from './defaults.js'
export { needsSourceSchema, sinkSchema } from './prepare-sinks.js'

/**
 * Run a pipeline graph: every source is read once, its items fan out to the sinks its
 * edges name (converted where the kinds differ), batched and written with bounded queues
 * in between. See the README for the checkpoint rule.
 */
export async function executePipeline(options: ExecuteOptions): Promise<RunSummary> {
  const run = new RunState(options)
  const issues = validatePipeline(run.pipeline, options.registry)
  if (issues.length > 0) {
    const error = new ProviderError({
      kind: 'config',
      message: `invalid pipeline: ${formatIssues(issues)}`,
      issues,
    })
    run.emit({ type: 'failed', error: error.toJSON() })
    await run.events
    return { status: 'failed', stats: run.stats(), error: error.toJSON(), checkpoints: {} }
  }
  const outer = options.signal
  const onCancel = () => run.controller.abort(outer.reason ?? new Error('cancelled'))
  if (outer.aborted) onCancel()
  else outer.addEventListener('abort', onCancel, { once: true })
  run.emit({ type: 'started' })
  const progressEvery = options.progressIntervalMs ?? 1000
  const progressTimer = setInterval(
    () => run.emit({ type: 'progress', nodes: run.stats().nodes }),
    progressEvery,
  )
  const checkpointTimer = setInterval(() => checkpointByTime(run), 250)
  try {
    await setUpRun(run)
    if (!run.signal.aborted) await runTasks(run)
  } catch (error) {
    run.fail(error)
  } finally {
    clearInterval(progressTimer)
    clearInterval(checkpointTimer)
    outer.removeEventListener('abort', onCancel)
  }
  // Whatever happened, save the acknowledged prefix: it never runs past an unwritten item.
  for (const source of run.sources) {
    await flushCheckpoint(run, source)
  }
  await Promise.all(
    [...run.nodes.values()].map((n) =>
      n.connection
        ?.close()
        .catch((error) =>
          run.logger.warn({ err: serialize(error), nodeId: n.node.id }, 'close failed'),
        ),
    ),
  )
  logWaits(run)
  const stats = run.stats()
  run.emit({ type: 'progress', nodes: stats.nodes })
  let summary: RunSummary
  if (run.failure) {
    summary = {
      status: 'failed',
      stats,
      error: run.failure.toJSON(),
      checkpoints: run.checkpoints,
    }
    run.emit({ type: 'failed', error: summary.error! })
  } else if (outer.aborted) {
    const reason =
      outer.reason instanceof Error
        ? outer.reason.message
        : typeof outer.reason === 'string'
          ? outer.reason
          : undefined
    summary = { status: 'cancelled', stats, checkpoints: run.checkpoints }
    run.emit({
      type: 'cancelled',
      ...(reason ? { reason } : {}),
      checkpoints: run.checkpoints,
    })
  } else if (run.refusedItems > 0) {
    // Within the budget, but some items arrived nowhere: never "completed".
    summary = { status: 'partial', stats, checkpoints: run.checkpoints }
    run.logger.warn(
      { refusedItems: run.refusedItems, failureBudget: run.failureBudget },
      'run partial: items were refused',
    )
    run.emit({ type: 'partial', stats })
  } else {
    summary = { status: 'completed', stats, checkpoints: run.checkpoints }
    run.emit({ type: 'completed', stats })
  }
  await run.events
  return summary
}

/**
 * Where each edge waited (overlap of reading and writing): the source blocked on a full
 * queue while the sink wrote, or the sink's writers idle while the source read. The larger
 * side names the bottleneck; the run's duration is beside them.
 */
function logWaits(run: RunState): void {
  const durationMs = Date.now() - run.startedAt
  for (const edge of run.edges) {
    const sourceWaitedMs = Math.round(edge.waits.sourceMs)
    const sinkWaitedMs = Math.round(edge.waits.sinkMs)
    const writers = edge.sink.node.concurrency ?? DEFAULTS.concurrency
    run.logger.info(
      {
        sourceNodeId: edge.source.node.id,
        nodeId: edge.sink.node.id,
        durationMs,
        sourceWaitedMs,
        sinkWaitedMs,
        writers,
      },
      `edge ${edge.source.node.id} -> ${edge.sink.node.id}: the source waited ${sourceWaitedMs} ms for the sink, the sink's ${writers} writer${writers === 1 ? '' : 's'} waited ${sinkWaitedMs} ms for batches, in a ${durationMs} ms run`,
    )
  }
}

/**
 * Run every part at once: per edge a batcher and `concurrency` writers, per source a
 * reader. The first failure stops the run; an abort fails every queue so each part ends.
 */
async function runTasks(run: RunState): Promise<void> {
  const tasks: Promise<void>[] = []
  const guard = (promise: Promise<void>) => tasks.push(promise.catch((error) => run.fail(error)))
  const onAbort = () => {
    const reason = run.signal.reason
    for (const edge of run.edges) {
      edge.items.fail(reason)
      edge.batches.fail(reason)
    }
  }
  run.signal.addEventListener('abort', onAbort, { once: true })
  try {
    for (const edge of run.edges) {
      guard(batchEdge(edge))
      for (let i = 0; i < (edge.sink.node.concurrency ?? DEFAULTS.concurrency); i++)
        guard(writeEdge(run, edge))
    }
    for (const source of run.sources) guard(readSource(run, source))
    await Promise.all(tasks)
  } finally {
    run.signal.removeEventListener('abort', onAbort)
  }
}
