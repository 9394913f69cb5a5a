import type { JetStreamClient } from '@nats-io/jetstream'
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import {
  AUTO_PARTITIONS,
  CancelRequestSchema,
  type Pipeline,
  type RunsStartRequest,
  RunsStartRequestSchema,
  type Subjects,
} from '@nvisy/protocol'
import { type Logger, sleep, toProviderError, type ValidationIssue } from '@nvisy/provider-core'
import { validatePipeline as defaultValidatePipeline } from '../executor/index.js'
import type { ExecuteOptions, ProviderRegistry, RunSummary } from '../executor/types.js'
import type { BoundCredentialsContext } from './bound-credentials.js'
import { openBound } from './bound-credentials.js'
import type { KvCheckpointStore } from './checkpoint-store.js'
import { type ConnectionRequests, findProvider } from './connection-requests.js'
import { connectionInput, credentialIssues, type OpenedCredentials } from './credentials.js'
import { type PartitionWork, PlanRejected } from './partition-work.js'
import {
  parseRequest,
  RequestRejected,
  type RequestReplies,
  rejectInvalid,
} from './request-replies.js'
import { RunEventPublisher } from './run-events.js'

/** What runs need from the dispatcher's state. */
export interface RunsContext extends BoundCredentialsContext {
  options: BoundCredentialsContext['options'] & {
    registry: ProviderRegistry
    execute: (options: ExecuteOptions) => Promise<RunSummary>
    validatePipeline?: (pipeline: unknown, registry: ProviderRegistry) => ValidationIssue[]
    executeOptions?: Pick<ExecuteOptions, 'progressIntervalMs' | 'retryBaseDelayMs'>
  }
  nc: NatsConnection
  js: JetStreamClient
  checkpoints: KvCheckpointStore
  partitions: PartitionWork
  subjects: Subjects
  log: Logger
}

interface ActiveRun {
  runId: string
  pipelineId: string
  controller: AbortController
  events: RunEventPublisher
  cancelSubscription: Subscription
  finished: boolean
  done: Promise<void>
}

export function abortError(reason: string): Error {
  const error = new Error(reason)
  error.name = 'AbortError'
  return error
}

/**
 * The runs of this instance: `runs.start` (checked, credentials opened, then launched here
 * or planned as partitions for the group), each run's cancel subject, and aborting and
 * waiting for them when the dispatcher drains or closes.
 */
export class Runs {
  readonly #c: RunsContext
  readonly #requests: RequestReplies
  readonly #connections: ConnectionRequests
  readonly #runs = new Map<string, ActiveRun>()
  /** Set when the dispatcher drains or closes: `runs.start` is refused as `transient`. */
  draining = false

  constructor(context: RunsContext, requests: RequestReplies, connections: ConnectionRequests) {
    this.#c = context
    this.#requests = requests
    this.#connections = connections
  }

  /** Run ids running on this instance now (partitions of partitioned runs excluded). */
  ids(): string[] {
    return [...this.#runs.keys()]
  }

  async start(msg: Msg) {
    if (this.draining) {
      throw new RequestRejected(
        'transient',
        `runtime instance ${this.#c.instanceId} is draining; send the run again`,
      )
    }
    const request: RunsStartRequest = parseRequest(
      RunsStartRequestSchema,
      msg,
      'runs.start request',
    )
    const { runId, pipeline } = request
    if (this.#runs.has(runId)) {
      throw new RequestRejected('validation', `run ${runId} is already running on this instance`, [
        { path: '/runId', rule: 'unique', message: 'a run with this id is already running' },
      ])
    }
    const { options } = this.#c
    const validate = options.validatePipeline ?? defaultValidatePipeline
    const issues: ValidationIssue[] = [
      ...validate(structuredClone(pipeline), options.registry).map((issue) => ({
        ...issue,
        path: `/pipeline${issue.path === '/' ? '' : issue.path}`,
      })),
      ...pipeline.nodes.flatMap((node, index) =>
        credentialIssues(node.connection, this.#c.policy, `/pipeline/nodes/${index}/connection`),
      ),
    ]
    if (issues.length > 0) throw rejectInvalid(`pipeline ${pipeline.id}`, issues)
    await this.#connections.confineLocalPaths(
      pipeline.nodes.map((node, index) => ({
        provider: findProvider(
          options.registry,
          node.provider,
          `/pipeline/nodes/${index}/provider`,
        ),
        params: node.connection.params,
        at: `/pipeline/nodes/${index}/connection/params`,
      })),
      `pipeline ${pipeline.id}`,
    )
    // Every sealed blob is opened and checked against this run and node before the run is
    // accepted (a refusal is the reply), and held for the run: nothing is opened later.
    const opened = await openBound(
      this.#c,
      pipeline.nodes.map((node, index) => ({
        connection: node.connection,
        provider: findProvider(
          options.registry,
          node.provider,
          `/pipeline/nodes/${index}/provider`,
        ),
        scope: { operation: 'run' as const, runId, nodeId: node.id },
        where: `node ${node.id} (${node.provider})`,
        path: `/pipeline/nodes/${index}/connection/sealedCredentials`,
      })),
      `run ${runId}`,
    )
    const credentials = new Map(pipeline.nodes.map((node, index) => [node.id, opened[index]]))
    if (request.partitions !== undefined) {
      const runLog = this.#c.log.child?.({ runId, pipelineId: pipeline.id }) ?? this.#c.log
      const planned = await this.#c.partitions
        .plan(runId, pipeline, request.resume ?? true, request.partitions, credentials, runLog)
        .catch((error) => {
          if (error instanceof PlanRejected)
            throw new RequestRejected('validation', error.message, error.issues)
          throw error
        })
      if ('unsplittable' in planned) {
        runLog.warn({ reason: planned.unsplittable }, planned.unsplittable)
        await this.#launch(runId, pipeline, request.resume ?? true, credentials)
        const requested = request.partitions === 'auto' ? AUTO_PARTITIONS : request.partitions
        return {
          accepted: true as const,
          runId,
          instanceId: this.#c.instanceId,
          plan: { requested, count: 1, pending: 1, reason: planned.unsplittable, resumed: false },
        }
      }
      return { accepted: true as const, runId, instanceId: this.#c.instanceId, plan: planned }
    }
    await this.#launch(runId, pipeline, request.resume ?? true, credentials)
    return { accepted: true as const, runId, instanceId: this.#c.instanceId }
  }

  /** Abort every run of this instance with `reason`; each stops at a batch boundary. */
  abortAll(reason: string): void {
    for (const run of this.#runs.values()) {
      if (!run.controller.signal.aborted) run.controller.abort(abortError(reason))
    }
  }

  /** True when every run ended within `timeoutMs`. */
  async waitFor(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.#runs.values()].map((run) => run.done)).then(() => true)
    // Unref'd: a drain that finished early must not keep the process alive.
    return Promise.race([all, sleep(timeoutMs, undefined, { unref: true }).then(() => false)])
  }

  async #launch(
    runId: string,
    pipeline: Pipeline,
    resume: boolean,
    opened: Map<string, OpenedCredentials | undefined>,
  ): Promise<void> {
    const { nc, js, subjects, log, options, checkpoints } = this.#c
    const runLog = log.child?.({ runId, pipelineId: pipeline.id }) ?? log
    const controller = new AbortController()
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(runId),
      { runId, pipelineId: pipeline.id },
      runLog,
    )
    const run: ActiveRun = {
      runId,
      pipelineId: pipeline.id,
      controller,
      events,
      finished: false,
      done: Promise.resolve(),
      cancelSubscription: nc.subscribe(subjects.runCancel(runId), {
        callback: (error, msg) => {
          if (error) return
          this.#requests.handle(subjects.runCancel(runId), msg, (m) => this.#cancel(run, m))
        },
      }),
    }
    this.#runs.set(runId, run)
    try {
      // The cancel subscription is registered with the server before the run is accepted.
      await nc.flush()
    } catch (error) {
      this.#runs.delete(runId)
      run.cancelSubscription.unsubscribe()
      throw error
    }
    runLog.info({ nodes: pipeline.nodes.length, resume }, 'run accepted')
    run.done = (async () => {
      let summary: RunSummary | undefined
      try {
        summary = await options.execute({
          runId,
          pipeline,
          registry: options.registry,
          resolveConnection: async (node) => connectionInput(node.connection, opened.get(node.id)),
          checkpoints,
          onEvent: (event) => events.publish(event),
          signal: controller.signal,
          resume,
          logger: runLog,
          ...options.executeOptions,
        })
        if (!events.terminal) {
          // The executor reports its end itself; this only covers one that did not.
          if (summary.status === 'completed')
            await events.publish({ type: 'completed', stats: summary.stats })
          else if (summary.status === 'partial')
            await events.publish({ type: 'partial', stats: summary.stats })
          else if (summary.status === 'cancelled')
            await events.publish({
              type: 'cancelled',
              reason: reasonOf(controller.signal),
              checkpoints: summary.checkpoints,
            })
          else
            await events.publish({
              type: 'failed',
              error: summary.error ?? { kind: 'internal', message: 'the run failed' },
            })
        }
        runLog.info({ status: summary.status, stats: summary.stats }, `run ${summary.status}`)
      } catch (error) {
        const failure = toProviderError(error, { operation: 'run' })
        runLog.error({ error: failure.toJSON() }, 'run failed')
        if (!events.terminal) await events.publish({ type: 'failed', error: failure.toJSON() })
      } finally {
        run.finished = true
        await events.idle()
        await run.cancelSubscription.drain().catch(() => {})
        this.#runs.delete(runId)
      }
    })()
  }

  async #cancel(run: ActiveRun, msg: Msg) {
    const request = parseRequest(CancelRequestSchema, msg, 'cancel request')
    if (run.finished) {
      throw new RequestRejected('not_found', `run ${run.runId} has already finished`)
    }
    const reason = request.reason ?? 'cancelled'
    this.#c.log.info({ runId: run.runId, reason }, 'run cancel requested')
    if (!run.controller.signal.aborted) run.controller.abort(abortError(reason))
    return { cancelled: true as const }
  }
}

function reasonOf(signal: AbortSignal): string | undefined {
  if (!signal.aborted) return undefined
  const reason = signal.reason
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : undefined
}
