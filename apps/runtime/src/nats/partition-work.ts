// Partitioned runs across the queue group (runs.start with `partitions`). The instance that
// receives the request plans the partitions (the source's `partition`, the plan stored next to
// the checkpoints as in `nvisy run --partitions`), records the run in the partitioned-runs KV
// bucket and puts one work item per partition on a JetStream work-queue stream. Every instance
// takes items from one durable pull consumer, runs each partition with the unchanged executor
// under the partition's own pipeline id (so its own checkpoint and exactly-once offsets), tells
// the server it is still working while the partition runs, and acknowledges the item only once
// the partition ended and its outcome is recorded: an item whose instance died is redelivered
// after the ack wait and resumed from the partition's checkpoint. The run has no coordinator
// that could die: its state lives in the bucket, and whichever instance records the last
// partition's end wins a compare-and-set on the run record and publishes the run's outcome.
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream'
import { AckPolicy } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import type { KeyPair } from '@nats-io/nkeys'
import { type Msg, type NatsConnection, nanos, type Subscription } from '@nats-io/transport-node'
import {
  AUTO_PARTITIONS,
  CancelRequestSchema,
  type ConnectionSpec,
  errorReply,
  type PartitionedRunRecord,
  PartitionedRunRecordSchema,
  type PartitionRecord,
  PartitionRecordSchema,
  type PartitionStatus,
  type PartitionWorkItem,
  PartitionWorkItemSchema,
  type Pipeline,
  parseMessage,
  partitionRecordKey,
  type SerializedError,
  type Subjects,
  validateMessage,
} from '@nvisy/protocol'
import {
  errorMessage,
  formatIssues,
  type Logger,
  type Provider,
  ProviderError,
  sleep,
  toProviderError,
} from '@nvisy/provider-core'
import { loadOrMakePlan, markPartitionsDone, partitionPipelineId } from '../executor/partitioned.js'
import type {
  ExecuteOptions,
  NodeStats,
  ProviderRegistry,
  RunEvent,
  RunStats,
  RunSummary,
} from '../executor/types.js'
import type { KvCheckpointStore } from './checkpoint-store.js'
import {
  connectionInput,
  credentialBinding,
  expectedBinding,
  type OpenedCredentials,
  openSealedCredentials,
  sealedPlaintext,
} from './credentials.js'
import { RunEventPublisher } from './run-events.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** How long an instance may hold a work item without a sign of life before it is redelivered. */
export const DEFAULT_PARTITION_ACK_WAIT_MS = 30_000
/** How long the credentials a partition carries (sealed by the runtime to itself) stay valid. */
export const DEFAULT_PARTITION_GRANT_VALIDITY_MS = 24 * 3_600_000

export interface PartitionWorkNaming {
  workStream: string
  workConsumer: string
  runsBucket: string
  /** The queue group the cancel subscription for partitioned runs uses. */
  cancelQueue: string
}

export interface PartitionWorkOptions {
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
  runs: KV
  checkpoints: KvCheckpointStore
  registry: ProviderRegistry
  execute: (options: ExecuteOptions) => Promise<RunSummary>
  executeOptions?: Pick<ExecuteOptions, 'progressIntervalMs' | 'retryBaseDelayMs'>
  keys: KeyPair
  publicKey: string
  instanceId: string
  subjects: Subjects
  naming: PartitionWorkNaming
  log: Logger
  /** Partitions this instance runs at once. */
  concurrency: number
  /** The work consumer's ack wait (set when this instance creates it). */
  ackWaitMs: number
  grantValidityMs: number
  /** How often a running partition looks at the run record for a cancel or a failure elsewhere. Default 1 s. */
  pollMs?: number
  /** How long an item waits (negatively acknowledged) before it is offered again while the sinks are prepared. Default 1 s. */
  prepareWaitMs?: number
}

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

interface LocalPartition {
  runId: string
  index: number
  controller: AbortController
  done: Promise<void>
}

function abortError(reason: string): Error {
  const error = new Error(reason)
  error.name = 'AbortError'
  return error
}

function reasonOf(signal: AbortSignal): string {
  const reason = signal.reason
  return reason instanceof Error
    ? reason.message
    : typeof reason === 'string'
      ? reason
      : 'cancelled'
}

function emptyStats(): RunStats {
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

/** True for the error a KV compare-and-set (`update` with a revision, `create`) fails with when it lost. */
function lostRace(error: unknown): boolean {
  const text = `${(error as { name?: string })?.name ?? ''} ${errorMessage(error)}`
  return /wrong last sequence|key exists|10071/i.test(text)
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

/** Create the work-queue stream, its durable consumer and the runs bucket when they are missing. */
export async function ensurePartitionWork(
  jsm: JetStreamManager,
  subjects: Subjects,
  naming: PartitionWorkNaming,
  ackWaitMs: number,
  log: Logger,
): Promise<void> {
  try {
    const info = await jsm.streams.info(naming.workStream)
    if (!info.config.subjects?.includes(subjects.partitionWork))
      throw new ProviderError({
        kind: 'config',
        operation: 'connect',
        message: `stream ${naming.workStream} exists without subject ${subjects.partitionWork} (it serves another subject prefix): give this environment its own --work-stream`,
      })
  } catch (error) {
    if (ProviderError.isInstance(error)) throw error
    if (!/not found/i.test(`${(error as { name?: string }).name} ${errorMessage(error)}`))
      throw error
    try {
      await jsm.streams.add({
        name: naming.workStream,
        subjects: [subjects.partitionWork],
        retention: 'workqueue' as never,
        // A work item published twice within this window (a retried publish) lands once.
        duplicate_window: nanos(10 * 60_000),
      })
    } catch (addError) {
      // Another instance created it at the same time.
      await jsm.streams.info(naming.workStream).catch(() => {
        throw addError
      })
    }
  }
  try {
    const info = await jsm.consumers.info(naming.workStream, naming.workConsumer)
    const existing = Math.round(Number(info.config.ack_wait ?? 0) / 1e6)
    if (existing !== ackWaitMs)
      log.warn(
        { consumer: naming.workConsumer, ackWaitMs: existing, asked: ackWaitMs },
        `the partition work consumer exists with an ack wait of ${existing} ms: that one is used`,
      )
  } catch {
    await jsm.consumers
      .add(naming.workStream, {
        durable_name: naming.workConsumer,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(ackWaitMs),
        // Redelivered until it is acknowledged: a partition is never dropped.
        max_deliver: -1,
      })
      .catch(async (error) => {
        await jsm.consumers.info(naming.workStream, naming.workConsumer).catch(() => {
          throw error
        })
      })
  }
}

export class PartitionWork {
  readonly #o: PartitionWorkOptions
  readonly #local = new Set<LocalPartition>()
  readonly #stop = new AbortController()
  #loop: Promise<void> | undefined
  readonly #cancelSubscriptions = new Map<string, Subscription>()
  #watch: { stop(): void } | undefined
  #watching: Promise<void> | undefined
  #freed: (() => void) | undefined
  #fetching: { stop(): void } | undefined

  constructor(options: PartitionWorkOptions) {
    this.#o = options
  }

  /** Run ids with a partition running on this instance. */
  activeRuns(): string[] {
    return [...new Set([...this.#local].map((p) => p.runId))]
  }

  /**
   * Start taking work items, and answer the cancel subject of every partitioned run that has
   * not ended (in a queue group: one instance answers, while any is alive), found by watching
   * the run records in the bucket.
   */
  start(): void {
    this.#loop = this.#takeItems()
    this.#watching = this.#watchRuns()
  }

  async #watchRuns(): Promise<void> {
    const { runs, nc, subjects, naming, log } = this.#o
    const stop = this.#stop.signal
    while (!stop.aborted) {
      try {
        // Single-token keys are the run records (`<runId>`); partition records have a dot.
        const watch = await runs.watch({ key: '*' })
        this.#watch = watch
        if (stop.aborted) watch.stop()
        for await (const entry of watch) {
          const runId = entry.key
          const running =
            entry.operation === 'PUT' &&
            entry.value.length > 0 &&
            (() => {
              try {
                return (
                  (JSON.parse(decoder.decode(entry.value)) as PartitionedRunRecord).state !==
                  'ended'
                )
              } catch {
                return false
              }
            })()
          const subscription = this.#cancelSubscriptions.get(runId)
          if (running && !subscription && !stop.aborted) {
            let subject: string
            try {
              subject = subjects.runCancel(runId)
            } catch {
              continue
            }
            this.#cancelSubscriptions.set(
              runId,
              nc.subscribe(subject, {
                queue: naming.cancelQueue,
                callback: (error, msg) => {
                  if (!error) void this.#cancel(runId, msg)
                },
              }),
            )
          } else if (!running && subscription) {
            subscription.unsubscribe()
            this.#cancelSubscriptions.delete(runId)
          }
        }
      } catch (error) {
        if (stop.aborted) break
        log.warn(
          { error: { message: errorMessage(error) } },
          'watching partitioned runs failed; retrying',
        )
        await sleep(1_000, stop).catch(() => {})
      }
    }
  }

  /** Stop taking items; abort the running partitions (they save checkpoints and go back on the queue). */
  async stop(reason: string, timeoutMs: number): Promise<boolean> {
    this.#stop.abort(abortError(reason))
    this.#freed?.()
    this.#fetching?.stop()
    this.#watch?.stop()
    for (const subscription of this.#cancelSubscriptions.values()) subscription.unsubscribe()
    this.#cancelSubscriptions.clear()
    for (const partition of this.#local) partition.controller.abort(abortError(reason))
    const all = Promise.allSettled([...this.#local].map((p) => p.done)).then(() => true)
    // Unref'd: a drain that finished early must not keep the process alive.
    const timeout = sleep(timeoutMs, undefined, { unref: true }).then(() => false)
    const finished = await Promise.race([all, timeout])
    await this.#loop?.catch(() => {})
    await this.#watching?.catch(() => {})
    return finished
  }

  // Planning (the instance that received runs.start) ------------------------------------

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
    const { registry, checkpoints, runs, js, subjects, instanceId } = this.#o
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
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(10 * 60_000)])
    const { plan, resumed } = await loadOrMakePlan(
      {
        pipeline,
        checkpoints,
        runId,
        resume,
        signal,
        partitions: count,
        resolveConnection: async (node) => connectionInput(node.connection, opened.get(node.id)),
        ...(this.#o.executeOptions?.retryBaseDelayMs === undefined
          ? {}
          : { retryBaseDelayMs: this.#o.executeOptions.retryBaseDelayMs }),
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
      await runs.create(runId, encoder.encode(JSON.stringify(record)))
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
      await this.#updateRun(runId, (run) => ({
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
    const { keys, publicKey, registry, grantValidityMs } = this.#o
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

  // Taking work items ------------------------------------------------------------------

  async #takeItems(): Promise<void> {
    const { js, naming, log, concurrency } = this.#o
    const stop = this.#stop.signal
    while (!stop.aborted) {
      if (this.#local.size >= concurrency) {
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
    this.#local.add(partition)
    partition.done = this.#runItem(msg, partition)
      .catch((error) =>
        this.#o.log.error(
          { error: { message: errorMessage(error) } },
          'a partition work item failed unexpectedly; it is offered again',
        ),
      )
      .finally(() => {
        this.#local.delete(partition)
        this.#freed?.()
      })
  }

  async #runItem(msg: JsMsg, partition: LocalPartition): Promise<void> {
    const { log, ackWaitMs } = this.#o
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
      const run = await this.#getRun(item.runId)
      if (!run || run.planId !== item.planId) {
        itemLog.error(
          { planId: item.planId },
          'a partition work item names no partitioned run of this plan; it is dropped',
        )
        msg.term('no such run')
        return
      }
      if (await this.#getPartition(item.runId, item.index)) {
        // Ended before (the instance died after recording it, before the ack).
        await msg.ackAck().catch(() => {})
        await this.#finish(item.runId)
        return
      }
      if (run.state !== 'running') {
        await this.#endPartition(item, run, 'cancelled', undefined, itemLog)
        await msg.ackAck().catch(() => {})
        await this.#finish(item.runId)
        return
      }
      if (run.preparer !== null && run.preparer !== item.index && !run.prepared) {
        // The sinks are being prepared by another partition: offered again shortly.
        msg.nak(this.#o.prepareWaitMs ?? 1_000)
        return
      }
      const summary = await this.#execute(item, run, partition, itemLog)
      if (summary.status === 'cancelled') {
        const now = await this.#getRun(item.runId)
        if (now?.state === 'running') {
          // This instance stopped it (drain, close): another instance resumes it from its checkpoint.
          itemLog.info({}, 'partition stopped on this instance; it goes back on the work queue')
          msg.nak()
          return
        }
      }
      await this.#endPartition(item, run, summary.status, summary, itemLog)
      await msg
        .ackAck()
        .catch((error) =>
          itemLog.warn(
            { error: { message: errorMessage(error) } },
            'acknowledging a partition failed; it is recorded, so a redelivery only finishes it',
          ),
        )
      await this.#finish(item.runId)
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
    const { registry, execute, checkpoints, js, subjects } = this.#o
    const label = { index: item.index, count: item.count, instanceId: this.#o.instanceId }
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
      void this.#getRun(item.runId)
        .then((now) => {
          if (now && now.state !== 'running' && !controller.signal.aborted)
            controller.abort(
              abortError(
                now.stop?.message ?? `the run is ${now.state === 'ended' ? 'over' : 'stopping'}`,
              ),
            )
        })
        .catch(() => {})
    }, this.#o.pollMs ?? 1_000)
    if (this.#stop.signal.aborted) controller.abort(this.#stop.signal.reason)
    const preparing = item.pipeline.nodes.filter(
      (node) => node.role === 'sink' && registry.get(node.provider)?.capabilities.prepare,
    ).length
    let prepared = 0
    const isPreparer = run.preparer === item.index
    const markPrepared = () =>
      this.#updateRun(item.runId, (now) => (now.prepared ? undefined : { ...now, prepared: true }))
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
        ...this.#o.executeOptions,
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
    const { keys, publicKey, registry, grantValidityMs } = this.#o
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

  /** Record how a partition ended, publish `partition_ended`, and stop the run when it failed. */
  async #endPartition(
    item: PartitionWorkItem,
    run: PartitionedRunRecord,
    status: PartitionStatus,
    summary: RunSummary | undefined,
    log: Logger,
  ): Promise<void> {
    const { runs, checkpoints, instanceId, js, subjects } = this.#o
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
      await runs.create(
        partitionRecordKey(item.runId, item.index),
        encoder.encode(JSON.stringify(record)),
      )
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
      await this.#updateRun(item.runId, (now) =>
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
  async #finish(runId: string): Promise<void> {
    const { checkpoints, js, subjects, log } = this.#o
    const run = await this.#getRun(runId)
    if (!run || run.state === 'ended') return
    const ended: PartitionRecord[] = []
    for (const index of run.pending) {
      const record = await this.#getPartition(runId, index)
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
    const won = await this.#updateRun(runId, (now) =>
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

  // Cancel -------------------------------------------------------------------------------

  async #cancel(runId: string, msg: Msg): Promise<void> {
    const { log } = this.#o
    let run: PartitionedRunRecord | undefined
    try {
      run = await this.#getRun(runId)
    } catch {
      return
    }
    if (!run) return
    const respond = (reply: unknown) => {
      if (msg.reply) msg.respond(encoder.encode(JSON.stringify(reply)))
    }
    if (run.state === 'ended') {
      respond(errorReply('not_found', `run ${runId} has already finished`))
      return
    }
    let reason = 'cancelled'
    const parsed = parseMessage(CancelRequestSchema, msg.data)
    if (!parsed.ok) {
      respond(
        errorReply(
          'validation',
          `invalid cancel request: ${formatIssues(parsed.issues)}`,
          parsed.issues,
        ),
      )
      return
    }
    reason = parsed.value.reason ?? reason
    await this.#updateRun(runId, (now) =>
      now.state !== 'running'
        ? undefined
        : { ...now, state: 'stopping', stop: { reason: 'cancelled', message: reason } },
    )
    for (const partition of this.#local)
      if (partition.runId === runId && !partition.controller.signal.aborted)
        partition.controller.abort(abortError(reason))
    log.info({ runId, reason }, 'partitioned run cancel requested')
    respond({ cancelled: true })
    // A run whose partitions are all queued ends when they are taken (each is recorded cancelled).
    await this.#finish(runId).catch(() => {})
  }

  // The runs bucket ----------------------------------------------------------------------

  async #getRun(runId: string): Promise<PartitionedRunRecord | undefined> {
    return (await this.#getRunEntry(runId))?.record
  }

  async #getRunEntry(
    runId: string,
  ): Promise<{ record: PartitionedRunRecord; revision: number } | undefined> {
    const entry = await this.#o.runs.get(runId)
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    const checked = validateMessage(
      PartitionedRunRecordSchema,
      JSON.parse(decoder.decode(entry.value)),
    )
    if (!checked.ok)
      throw new ProviderError({
        kind: 'internal',
        message: `the partitioned run record ${runId} is not valid: ${formatIssues(checked.issues)}`,
      })
    return { record: checked.value, revision: entry.revision }
  }

  async #getPartition(runId: string, index: number): Promise<PartitionRecord | undefined> {
    const entry = await this.#o.runs.get(partitionRecordKey(runId, index))
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    const checked = validateMessage(PartitionRecordSchema, JSON.parse(decoder.decode(entry.value)))
    return checked.ok ? checked.value : undefined
  }

  /** Compare-and-set the run record; `change` returns undefined to leave it. True when this call changed it. */
  async #updateRun(
    runId: string,
    change: (record: PartitionedRunRecord) => PartitionedRunRecord | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry = await this.#getRunEntry(runId)
      if (!entry) return false
      const next = change(structuredClone(entry.record))
      if (!next) return false
      try {
        await this.#o.runs.update(runId, encoder.encode(JSON.stringify(next)), entry.revision)
        return true
      } catch (error) {
        if (!lostRace(error)) throw error
      }
    }
    throw new ProviderError({
      kind: 'transient',
      message: `the partitioned run record ${runId} kept changing: could not update it`,
    })
  }
}

/** The reason a stopped partition reports. */
export { reasonOf as partitionStopReason }
export type { Provider }
