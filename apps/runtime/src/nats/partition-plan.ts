// Planning a partitioned run (on the instance that received runs.start): the source's partition
// plan (stored next to the checkpoints, as in `nvisy run --partitions`), the run record in the
// runs bucket, and one work item per pending partition on the work queue, each carrying the
// pipeline without credentials and the credentials as grants sealed by the runtime to itself.
import {
  AUTO_PARTITIONS,
  type ConnectionSpec,
  type PartitionedRunRecord,
  type PartitionWorkItem,
  type Pipeline,
} from '@nvisy/protocol'
import { type Logger, toProviderError } from '@nvisy/provider-core'
import { loadOrMakePlan } from '../executor/partitioned.js'
import {
  connectionInput,
  credentialBinding,
  type OpenedCredentials,
  sealedPlaintext,
} from './credentials.js'
import type { PartitionContext } from './partition-context.js'
import { lostRace } from './partition-runs-store.js'
import { RunEventPublisher } from './run-events.js'

const encoder = new TextEncoder()

export interface PlannedReply {
  planId?: string
  requested: number
  count: number
  pending: number
  reason?: string
  resumed: boolean
}

/** A runs.start refused before any work (a validation reply naming the field). */
export class PlanRejected extends Error {
  constructor(
    message: string,
    readonly issues: { path: string; rule: string; message: string }[],
  ) {
    super(message)
  }
}

/** The pipeline without any credentials: what a work item carries (its credentials are in `grants`). */
function withoutCredentials(pipeline: Pipeline): Pipeline {
  return {
    ...pipeline,
    nodes: pipeline.nodes.map((node) => {
      const { credentials: _c, sealedCredentials: _s, ...connection } = node.connection
      return { ...node, connection: connection as ConnectionSpec }
    }),
  }
}

export class PartitionPlanner {
  readonly #ctx: PartitionContext

  constructor(context: PartitionContext) {
    this.#ctx = context
  }

  /**
   * Plan a run's partitions and put them on the work queue. Returns undefined when the source
   * cannot split (the caller runs it as an ordinary run) with the reason logged.
   */
  async plan(
    runId: string,
    pipeline: Pipeline,
    resume: boolean,
    requested: number | 'auto',
    opened: Map<string, OpenedCredentials | undefined>,
    log: Logger,
  ): Promise<PlannedReply | { unsplittable: string }> {
    const { registry, checkpoints, js, subjects, instanceId } = this.#ctx.options
    const count = requested === 'auto' ? AUTO_PARTITIONS : requested
    const sources = pipeline.nodes.filter((node) => node.role === 'source')
    if (sources.length !== 1)
      throw new PlanRejected(
        `partitioned runs split one source: pipeline ${pipeline.id} has ${sources.length} source nodes (${sources.map((s) => s.id).join(', ')})`,
        [
          {
            path: '/partitions',
            rule: 'one source',
            message: `a partitioned run needs exactly one source node, the pipeline has ${sources.length}`,
          },
        ],
      )
    const source = sources[0]!
    const provider = registry.get(source.provider)!
    if (!provider.capabilities.partition)
      return {
        unsplittable: `provider ${provider.id} cannot split a stream into partitions: the run is read as one`,
      }
    const signal = AbortSignal.any([this.#ctx.stop, AbortSignal.timeout(10 * 60_000)])
    const { plan, resumed } = await loadOrMakePlan(
      {
        pipeline,
        checkpoints,
        runId,
        resume,
        signal,
        partitions: count,
        resolveConnection: async (node) => connectionInput(node.connection, opened.get(node.id)),
        ...(this.#ctx.options.executeOptions?.retryBaseDelayMs === undefined
          ? {}
          : { retryBaseDelayMs: this.#ctx.options.executeOptions.retryBaseDelayMs }),
      },
      source,
      provider,
      log,
    )
    const pending = plan.partitions.flatMap((p, index) => (p.done ? [] : [index]))
    const preparing = pipeline.nodes.some(
      (node) => node.role === 'sink' && registry.get(node.provider)?.capabilities.prepare,
    )
    const preparer = preparing ? (pending[0] ?? null) : null
    const record: PartitionedRunRecord = {
      v: 1,
      runId,
      pipelineId: pipeline.id,
      planId: plan.id,
      sourceNodeId: source.id,
      count: plan.partitions.length,
      requested: count,
      ...(plan.reason === undefined ? {} : { reason: plan.reason }),
      resumed,
      pending,
      preparer,
      prepared: preparer === null,
      state: 'running',
      failureBudget:
        pipeline.options?.failureBudget === undefined ? 0 : pipeline.options.failureBudget,
      plannedBy: instanceId,
      startedAt: new Date().toISOString(),
    }
    try {
      await this.#ctx.store.createRun(runId, record)
    } catch (error) {
      if (lostRace(error))
        throw new PlanRejected(
          `run ${runId} was started before as a partitioned run: every run needs a new run id`,
          [{ path: '/runId', rule: 'unique', message: 'a run with this id was started before' }],
        )
      throw error
    }
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(runId),
      { runId, pipelineId: pipeline.id },
      log,
    )
    await events.publish({ type: 'started' })
    try {
      const grants = this.#grants(runId, pipeline, opened)
      const bare = withoutCredentials(pipeline)
      for (const index of pending) {
        const item: PartitionWorkItem = {
          v: 1,
          runId,
          pipeline: bare,
          planId: plan.id,
          index,
          count: plan.partitions.length,
          sourceNodeId: source.id,
          stream: plan.partitions[index]!.stream as Record<string, unknown>,
          grants,
        }
        await js.publish(subjects.partitionWork, encoder.encode(JSON.stringify(item)), {
          msgID: `${runId}.${plan.id}.${index}`,
          retries: 3,
        })
      }
    } catch (error) {
      // The queue could not take every partition: the run fails now instead of waiting forever.
      const failure = toProviderError(error, { operation: 'run' })
      await this.#ctx.store.updateRun(runId, (run) => ({
        ...run,
        state: 'ended',
        outcome: 'failed',
        endedAt: new Date().toISOString(),
      }))
      await events.publish({
        type: 'failed',
        error: {
          ...failure.toJSON(),
          message: `putting the partitions on the work queue failed: ${failure.message}`,
        },
      })
      await events.idle()
      throw failure
    }
    await events.idle()
    log.info(
      { planId: plan.id, partitions: plan.partitions.length, pending: pending.length, resumed },
      `partitioned run: ${pending.length} of ${plan.partitions.length} partition(s) on the work queue`,
    )
    return {
      planId: plan.id,
      requested: count,
      count: plan.partitions.length,
      pending: pending.length,
      ...(plan.reason === undefined ? {} : { reason: plan.reason }),
      resumed,
    }
  }

  /**
   * Each node's credentials, sealed by this runtime's key to itself (every instance of the group
   * shares the seed), bound to this run and node, the provider and the destination params, so
   * a grant opens only for this run's partitions and only towards the hosts the run names.
   */
  #grants(
    runId: string,
    pipeline: Pipeline,
    opened: Map<string, OpenedCredentials | undefined>,
  ): Record<string, string> {
    const { keys, publicKey, registry, grantValidityMs } = this.#ctx.options
    const grants: Record<string, string> = {}
    for (const node of pipeline.nodes) {
      if (
        node.connection.credentials === undefined &&
        node.connection.sealedCredentials === undefined
      )
        continue
      const provider = registry.get(node.provider)!
      const { credentials } = connectionInput(node.connection, opened.get(node.id))
      const plaintext = sealedPlaintext(
        credentialBinding(
          { operation: 'run', runId, nodeId: node.id },
          {
            provider: provider.id,
            paramsSchema: provider.definition.params,
            params: node.connection.params,
            ttlMs: grantValidityMs,
          },
        ),
        credentials,
      )
      try {
        grants[node.id] = Buffer.from(keys.seal(plaintext, publicKey)).toString('base64')
      } finally {
        plaintext.fill(0)
      }
    }
    return grants
  }
}
