// Running partitions: take work items from the durable pull consumer (at most `concurrency` at
// once), run each partition with the unchanged executor under the partition's own pipeline id
// (its own checkpoint and exactly-once offsets) with the credentials its grants open, tell the
// server the item is still being worked on, and acknowledge the item only once the partition's
// end is recorded. A partition this instance stops (drain, close) goes back on the queue.
import type { JsMsg } from '@nats-io/jetstream'
import {
  type PartitionedRunRecord,
  type PartitionWorkItem,
  PartitionWorkItemSchema,
  parseMessage,
} from '@nvisy/protocol'
import {
  errorMessage,
  formatIssues,
  type Logger,
  ProviderError,
  sleep,
  toProviderError,
} from '@nvisy/provider-core'
import { partitionPipelineId } from '../executor/partitioned.js'
import type { RunEvent, RunSummary } from '../executor/types.js'
import { expectedBinding, type OpenedCredentials, openSealedCredentials } from './credentials.js'
import { abortError, type LocalPartition, type PartitionContext } from './partition-context.js'
import { emptyStats, type PartitionOutcome } from './partition-outcome.js'
import { RunEventPublisher } from './run-events.js'

export class PartitionRunner {
  readonly #ctx: PartitionContext
  readonly #outcome: PartitionOutcome
  #loop: Promise<void> | undefined
  #freed: (() => void) | undefined
  #fetching: { stop(): void } | undefined

  constructor(context: PartitionContext, outcome: PartitionOutcome) {
    this.#ctx = context
    this.#outcome = outcome
  }

  /** Start taking work items. */
  start(): void {
    this.#loop = this.#takeItems()
  }

  /** Wake the loop that takes items (waiting for a free slot or for a fetch) so it sees the stop. */
  interrupt(): void {
    this.#freed?.()
    this.#fetching?.stop()
  }

  /** Resolves when the loop that takes items has ended. */
  async stopped(): Promise<void> {
    await this.#loop?.catch(() => {})
  }

  async #takeItems(): Promise<void> {
    const { js, naming, log, concurrency } = this.#ctx.options
    const stop = this.#ctx.stop
    while (!stop.aborted) {
      if (this.#ctx.local.size >= concurrency) {
        await new Promise<void>((resolve) => {
          this.#freed = resolve
        })
        continue
      }
      try {
        const consumer = await js.consumers.get(naming.workStream, naming.workConsumer)
        const messages = await consumer.fetch({ max_messages: 1, expires: 2_000 })
        this.#fetching = messages
        if (stop.aborted) messages.stop()
        for await (const msg of messages) {
          if (stop.aborted) {
            msg.nak()
            break
          }
          this.#startItem(msg)
        }
      } catch (error) {
        if (stop.aborted) break
        log.warn(
          { error: { message: errorMessage(error) } },
          'taking partition work items failed; retrying',
        )
        await sleep(1_000, stop).catch(() => {})
      }
    }
  }

  #startItem(msg: JsMsg): void {
    const partition: LocalPartition = {
      runId: '',
      index: -1,
      controller: new AbortController(),
      done: Promise.resolve(),
    }
    this.#ctx.local.add(partition)
    partition.done = this.#runItem(msg, partition)
      .catch((error) =>
        this.#ctx.options.log.error(
          { error: { message: errorMessage(error) } },
          'a partition work item failed unexpectedly; it is offered again',
        ),
      )
      .finally(() => {
        this.#ctx.local.delete(partition)
        this.#freed?.()
      })
  }

  async #runItem(msg: JsMsg, partition: LocalPartition): Promise<void> {
    const { log, ackWaitMs } = this.#ctx.options
    const parsed = parseMessage(PartitionWorkItemSchema, msg.data)
    if (!parsed.ok) {
      // Not an item this runtime wrote: dropped (term), with the reason in the log.
      log.error(
        { issues: parsed.issues },
        `a partition work item is not valid and is dropped: ${formatIssues(parsed.issues)}`,
      )
      msg.term('invalid work item')
      return
    }
    const item = parsed.value
    partition.runId = item.runId
    partition.index = item.index
    const itemLog =
      log.child?.({ runId: item.runId, pipelineId: item.pipeline.id, partition: item.index }) ?? log
    // Sign of life while the partition runs (and while it is looked at): no redelivery.
    const heartbeat = setInterval(() => msg.working(), Math.max(250, Math.floor(ackWaitMs / 3)))
    try {
      const run = await this.#ctx.store.getRun(item.runId)
      if (!run || run.planId !== item.planId) {
        itemLog.error(
          { planId: item.planId },
          'a partition work item names no partitioned run of this plan; it is dropped',
        )
        msg.term('no such run')
        return
      }
      if (await this.#ctx.store.getPartition(item.runId, item.index)) {
        // Ended before (the instance died after recording it, before the ack).
        await msg.ackAck().catch(() => {})
        await this.#outcome.finish(item.runId)
        return
      }
      if (run.state !== 'running') {
        await this.#outcome.endPartition(item, run, 'cancelled', undefined, itemLog)
        await msg.ackAck().catch(() => {})
        await this.#outcome.finish(item.runId)
        return
      }
      if (run.preparer !== null && run.preparer !== item.index && !run.prepared) {
        // The sinks are being prepared by another partition: offered again shortly.
        msg.nak(this.#ctx.options.prepareWaitMs ?? 1_000)
        return
      }
      const summary = await this.#execute(item, run, partition, itemLog)
      if (summary.status === 'cancelled') {
        const now = await this.#ctx.store.getRun(item.runId)
        if (now?.state === 'running') {
          // This instance stopped it (drain, close): another instance resumes it from its checkpoint.
          itemLog.info({}, 'partition stopped on this instance; it goes back on the work queue')
          msg.nak()
          return
        }
      }
      await this.#outcome.endPartition(item, run, summary.status, summary, itemLog)
      await msg
        .ackAck()
        .catch((error) =>
          itemLog.warn(
            { error: { message: errorMessage(error) } },
            'acknowledging a partition failed; it is recorded, so a redelivery only finishes it',
          ),
        )
      await this.#outcome.finish(item.runId)
    } finally {
      clearInterval(heartbeat)
    }
  }

  async #execute(
    item: PartitionWorkItem,
    run: PartitionedRunRecord,
    partition: LocalPartition,
    log: Logger,
  ): Promise<RunSummary> {
    const { registry, execute, checkpoints, js, subjects } = this.#ctx.options
    const label = { index: item.index, count: item.count, instanceId: this.#ctx.options.instanceId }
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(item.runId),
      { runId: item.runId, pipelineId: item.pipeline.id },
      log,
    )
    let opened: Map<string, OpenedCredentials>
    try {
      opened = this.#openGrants(item)
    } catch (error) {
      const failure = toProviderError(error)
      return {
        status: 'failed',
        stats: emptyStats(),
        error: failure.toJSON(),
        checkpoints: {},
      }
    }
    const { controller } = partition
    // A cancel or a failure elsewhere is seen in the run record.
    const poll = setInterval(() => {
      void this.#ctx.store
        .getRun(item.runId)
        .then((now) => {
          if (now && now.state !== 'running' && !controller.signal.aborted)
            controller.abort(
              abortError(
                now.stop?.message ?? `the run is ${now.state === 'ended' ? 'over' : 'stopping'}`,
              ),
            )
        })
        .catch(() => {})
    }, this.#ctx.options.pollMs ?? 1_000)
    if (this.#ctx.stop.aborted) controller.abort(this.#ctx.stop.reason)
    const preparing = item.pipeline.nodes.filter(
      (node) => node.role === 'sink' && registry.get(node.provider)?.capabilities.prepare,
    ).length
    let prepared = 0
    const isPreparer = run.preparer === item.index
    const markPrepared = () =>
      this.#ctx.store.updateRun(item.runId, (now) =>
        now.prepared ? undefined : { ...now, prepared: true },
      )
    let summary: RunSummary
    try {
      summary = await execute({
        runId: item.runId,
        pipeline: {
          ...item.pipeline,
          id: partitionPipelineId(item.pipeline.id, item.planId, item.index),
          nodes: item.pipeline.nodes.map((node) =>
            node.id === item.sourceNodeId
              ? { ...node, stream: structuredClone(item.stream) }
              : node,
          ),
        },
        registry,
        resolveConnection: async (node) => ({
          credentials: structuredClone(opened.get(node.id)?.credentials ?? {}),
          params: structuredClone(node.connection.params),
        }),
        checkpoints,
        signal: controller.signal,
        // A partition of a new plan has nothing stored under its keys; a redelivered one resumes.
        resume: true,
        logger: log,
        ...this.#ctx.options.executeOptions,
        onEvent: async (event: RunEvent) => {
          switch (event.type) {
            case 'progress':
            case 'checkpoint':
            case 'item_failed':
              await events.publish({ ...event, partition: label })
              return
            case 'prepared':
              if (!isPreparer) return
              await events.publish({ ...event, partition: label })
              if (++prepared >= preparing) await markPrepared()
              return
            default:
              // started and the outcome: the run's, published once; this partition's end is partition_ended.
              return
          }
        },
      })
      if (isPreparer && (summary.status === 'completed' || summary.status === 'partial'))
        await markPrepared()
    } catch (error) {
      summary = {
        status: 'failed',
        stats: emptyStats(),
        error: toProviderError(error, { operation: 'run' }).toJSON(),
        checkpoints: {},
      }
    } finally {
      clearInterval(poll)
      await events.idle()
    }
    return summary
  }

  /** Open the item's credential grants: sealed by this runtime's key to itself, for this run and node. */
  #openGrants(item: PartitionWorkItem): Map<string, OpenedCredentials> {
    const { keys, publicKey, registry, grantValidityMs } = this.#ctx.options
    const opened = new Map<string, OpenedCredentials>()
    for (const [nodeId, grant] of Object.entries(item.grants)) {
      const node = item.pipeline.nodes.find((n) => n.id === nodeId)
      const provider = node && registry.get(node.provider)
      if (!node || !provider)
        throw new ProviderError({
          kind: 'auth',
          message: `partition ${item.index} of run ${item.runId}: a credential grant names node ${nodeId}, which the pipeline does not have`,
        })
      opened.set(
        nodeId,
        this.#openGrant(
          keys,
          publicKey,
          grant,
          expectedBinding(
            { operation: 'run', runId: item.runId, nodeId },
            {
              provider: provider.id,
              paramsSchema: provider.definition.params,
              params: node.connection.params,
            },
          ),
          `partition ${item.index} of run ${item.runId}, node ${nodeId} (${provider.id})`,
          `/grants/${nodeId}`,
          { maxValidityMs: grantValidityMs },
        ),
      )
    }
    return opened
  }

  /** Open one grant; a grant sealed with another key means the group does not share its seed. */
  #openGrant(...args: Parameters<typeof openSealedCredentials>): OpenedCredentials {
    try {
      return openSealedCredentials(...args)
    } catch (error) {
      const issue = ProviderError.isInstance(error) ? error.issues?.[0] : undefined
      if (issue?.rule !== 'sealed') throw error
      const message =
        "the partition's credentials were sealed by another runtime key: every instance of a queue group must share the runtime seed (nvisy serve --seed-file or NVISY_RUNTIME_SEED)"
      throw new ProviderError({
        kind: 'auth',
        message: `${args[4]}: ${message}`,
        issues: [{ path: issue.path, rule: 'sealed', message }],
      })
    }
  }
}
