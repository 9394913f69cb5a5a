// How partitions of a partitioned run end: each partition's end is recorded once in the runs
// bucket and published (`partition_ended`); when every partition the run reads has ended, the
// instance that wins the compare-and-set on the run record ends the run and publishes its outcome
// with the counts of all partitions.
import type {
  PartitionedRunRecord,
  PartitionRecord,
  PartitionStatus,
  PartitionWorkItem,
  SerializedError,
} from '@nvisy/protocol'
import { errorMessage, type Logger } from '@nvisy/provider-core'
import { markPartitionsDone, partitionPipelineId } from '../executor/partitioned.js'
import type { NodeStats, RunStats, RunSummary } from '../executor/types.js'
import type { PartitionContext } from './partition-context.js'
import { lostRace } from './partition-runs-store.js'
import { RunEventPublisher } from './run-events.js'

export function emptyStats(): RunStats {
  return { nodes: {}, failedItems: 0, refusedItems: 0, deadLettered: 0, durationMs: 0 }
}

function addStats(into: RunStats, stats: PartitionRecord['stats']): void {
  if (!stats) return
  for (const [id, node] of Object.entries(stats.nodes) as [string, NodeStats][]) {
    into.nodes[id] ??= { items: 0, bytes: 0, failed: 0 }
    const total = into.nodes[id]!
    total.items += node.items
    total.bytes += node.bytes
    total.failed += node.failed
  }
  into.failedItems += stats.failedItems
  into.refusedItems = (into.refusedItems ?? 0) + (stats.refusedItems ?? 0)
  into.deadLettered = (into.deadLettered ?? 0) + (stats.deadLettered ?? 0)
}

export class PartitionOutcome {
  readonly #ctx: PartitionContext

  constructor(context: PartitionContext) {
    this.#ctx = context
  }

  /** Record how a partition ended, publish `partition_ended`, and stop the run when it failed. */
  async endPartition(
    item: PartitionWorkItem,
    run: PartitionedRunRecord,
    status: PartitionStatus,
    summary: RunSummary | undefined,
    log: Logger,
  ): Promise<void> {
    const { checkpoints, instanceId, js, subjects } = this.#ctx.options
    let checkpoint = summary?.checkpoints[item.sourceNodeId]
    if (checkpoint === undefined)
      checkpoint = await checkpoints
        .load(partitionPipelineId(item.pipeline.id, item.planId, item.index), item.sourceNodeId)
        .catch(() => undefined)
    const record: PartitionRecord = {
      v: 1,
      index: item.index,
      status,
      instanceId,
      ...(summary ? { stats: summary.stats } : {}),
      ...(summary?.error ? { error: summary.error } : {}),
      ...(checkpoint === undefined ? {} : { checkpoint }),
      endedAt: new Date().toISOString(),
    }
    try {
      await this.#ctx.store.createPartition(item.runId, item.index, record)
    } catch (error) {
      // Recorded by another delivery of the same item already: that record stands.
      if (!lostRace(error)) throw error
      return
    }
    log.info({ status }, `partition ${item.index} of ${item.count} ${status}`)
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(item.runId),
      { runId: item.runId, pipelineId: run.pipelineId },
      log,
    )
    await events.publish({
      type: 'partition_ended',
      partition: { index: item.index, count: item.count },
      status,
      instanceId,
      ...(summary ? { stats: summary.stats } : {}),
      ...(summary?.error ? { error: summary.error } : {}),
      ...(checkpoint === undefined ? {} : { checkpoint }),
    })
    await events.idle()
    if (status === 'failed') {
      const error = summary?.error ?? { kind: 'internal' as const, message: 'the partition failed' }
      await this.#ctx.store.updateRun(item.runId, (now) =>
        now.state !== 'running'
          ? undefined
          : {
              ...now,
              state: 'stopping',
              stop: {
                reason: 'failed',
                message: `partition ${item.index} of ${item.count} failed: ${error.message}`,
                error: {
                  ...error,
                  message: `partition ${item.index} of ${item.count} failed: ${error.message}`,
                },
              },
            },
      )
    }
  }

  /**
   * When every partition the run reads has ended, end the run: the instance whose
   * compare-and-set wins marks the completed partitions in the stored plan and publishes the
   * run's outcome with the counts of all partitions.
   */
  async finish(runId: string): Promise<void> {
    const { checkpoints, js, subjects, log } = this.#ctx.options
    const run = await this.#ctx.store.getRun(runId)
    if (!run || run.state === 'ended') return
    const ended: PartitionRecord[] = []
    for (const index of run.pending) {
      const record = await this.#ctx.store.getPartition(runId, index)
      if (!record) return
      ended.push(record)
    }
    const stats = emptyStats()
    for (const record of ended) addStats(stats, record.stats)
    stats.durationMs = Math.max(0, Date.now() - Date.parse(run.startedAt))
    const failed = ended.find((p) => p.status === 'failed')
    const budget = run.failureBudget === undefined ? 0 : run.failureBudget
    let outcome: PartitionStatus
    let error: SerializedError | undefined
    if (run.stop?.reason === 'failed' || failed) {
      outcome = 'failed'
      error = run.stop?.error ?? {
        ...(failed!.error ?? { kind: 'internal', message: 'the partition failed' }),
        message: `partition ${failed!.index} of ${run.count} failed: ${failed!.error?.message ?? 'the partition failed'}`,
      }
    } else if (run.stop?.reason === 'cancelled' || ended.some((p) => p.status === 'cancelled')) {
      outcome = 'cancelled'
    } else if (budget !== null && (stats.refusedItems ?? 0) > budget) {
      outcome = 'failed'
      error = {
        kind: 'data',
        message: `failure budget spent: ${stats.refusedItems} items refused across ${run.count} partitions, the pipeline allows ${budget}`,
      }
    } else outcome = (stats.refusedItems ?? 0) > 0 ? 'partial' : 'completed'
    const won = await this.#ctx.store.updateRun(runId, (now) =>
      now.state === 'ended'
        ? undefined
        : { ...now, state: 'ended', outcome, endedAt: new Date().toISOString() },
    )
    if (!won) return
    const done = ended.filter((p) => p.status === 'completed' || p.status === 'partial')
    await markPartitionsDone(
      checkpoints,
      run.pipelineId,
      run.sourceNodeId,
      run.planId,
      done.map((p) => p.index),
      runId,
    ).catch((markError) =>
      log.warn(
        { runId, error: { message: errorMessage(markError) } },
        'could not mark the completed partitions in the stored plan: a resumed run reads them on from their checkpoints',
      ),
    )
    const partitions = ended.map((p) => ({
      index: p.index,
      status: p.status,
      instanceId: p.instanceId,
      ...(p.stats ? { items: Object.values(p.stats.nodes).reduce((n, s) => n + s.items, 0) } : {}),
    }))
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(runId),
      { runId, pipelineId: run.pipelineId },
      log,
    )
    const plan = { planId: run.planId, count: run.count, partitions }
    if (outcome === 'failed') await events.publish({ type: 'failed', error: error!, plan })
    else if (outcome === 'cancelled')
      await events.publish({
        type: 'cancelled',
        reason: run.stop?.message ?? 'cancelled',
        checkpoints: {},
        partitions: Object.fromEntries(ended.map((p) => [String(p.index), p.checkpoint])),
        plan,
      })
    else await events.publish({ type: outcome, stats, plan })
    await events.idle()
    log.info({ runId, outcome, stats }, `partitioned run ${outcome}`)
  }
}
