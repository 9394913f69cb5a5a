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
//
// This file is the facade the dispatcher uses (start, stop, plan, activeRuns); the jobs live in
// partition-plan.ts (planning, work items), partition-runner.ts (taking items, running a
// partition), partition-outcome.ts (recording partition ends, ending the run),
// partition-cancel.ts (serving cancels), partition-runs-store.ts (the runs bucket) and
// partition-queue.ts (the work stream and consumer).
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import type { KeyPair } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Pipeline, Subjects } from '@nvisy/protocol'
import { type Logger, sleep } from '@nvisy/provider-core'
import type { ExecuteOptions, ProviderRegistry, RunSummary } from '../executor/types.js'
import type { KvCheckpointStore } from './checkpoint-store.js'
import type { OpenedCredentials } from './credentials.js'
import { PartitionCancel } from './partition-cancel.js'
import { abortError, type LocalPartition, type PartitionContext } from './partition-context.js'
import { PartitionOutcome } from './partition-outcome.js'
import { PartitionPlanner, type PlannedReply } from './partition-plan.js'
import { PartitionRunner } from './partition-runner.js'
import { PartitionRunsStore } from './partition-runs-store.js'

export type { Provider } from '@nvisy/provider-core'
/** The reason a stopped partition reports. */
export { reasonOf as partitionStopReason } from './partition-context.js'
export { type PlannedReply, PlanRejected } from './partition-plan.js'
export { ensurePartitionWork } from './partition-queue.js'

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

export class PartitionWork {
  readonly #local = new Set<LocalPartition>()
  readonly #stop = new AbortController()
  readonly #planner: PartitionPlanner
  readonly #runner: PartitionRunner
  readonly #cancels: PartitionCancel

  constructor(options: PartitionWorkOptions) {
    const context: PartitionContext = {
      options,
      store: new PartitionRunsStore(options.runs),
      local: this.#local,
      stop: this.#stop.signal,
    }
    const outcome = new PartitionOutcome(context)
    this.#planner = new PartitionPlanner(context)
    this.#runner = new PartitionRunner(context, outcome)
    this.#cancels = new PartitionCancel(context, outcome)
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
    this.#runner.start()
    this.#cancels.start()
  }

  /** Stop taking items; abort the running partitions (they save checkpoints and go back on the queue). */
  async stop(reason: string, timeoutMs: number): Promise<boolean> {
    this.#stop.abort(abortError(reason))
    this.#runner.interrupt()
    this.#cancels.close()
    for (const partition of this.#local) partition.controller.abort(abortError(reason))
    const all = Promise.allSettled([...this.#local].map((p) => p.done)).then(() => true)
    // Unref'd: a drain that finished early must not keep the process alive.
    const timeout = sleep(timeoutMs, undefined, { unref: true }).then(() => false)
    const finished = await Promise.race([all, timeout])
    await this.#runner.stopped()
    await this.#cancels.stopped()
    return finished
  }

  /**
   * Plan a run's partitions and put them on the work queue. Returns undefined when the source
   * cannot split (the caller runs it as an ordinary run) with the reason logged.
   */
  plan(
    runId: string,
    pipeline: Pipeline,
    resume: boolean,
    requested: number | 'auto',
    opened: Map<string, OpenedCredentials | undefined>,
    log: Logger,
  ): Promise<PlannedReply | { unsplittable: string }> {
    return this.#planner.plan(runId, pipeline, resume, requested, opened, log)
  }
}
