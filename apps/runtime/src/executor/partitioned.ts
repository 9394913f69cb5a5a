// Partitioned runs in one process: the source splits its stream into disjoint partitions
// (provider-core `partition`), and the executor runs once per partition, all at once, each
// with its own checkpoint. The plan is stored next to the checkpoints, so a resumed run
// resumes the same partitions, each from its own checkpoint, and does not read again a
// partition that completed.
import { createHash, randomBytes } from 'node:crypto'
import {
  canonicalJson,
  formatIssues,
  type Logger,
  type Provider,
  ProviderError,
  retry,
  type SerializedProviderError,
  silentLogger,
  toProviderError,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import { DEFAULTS, executePipeline } from './execute.js'
import type {
  ExecuteOptions,
  NodeStats,
  RunEvent,
  RunStats,
  RunStatus,
  RunSummary,
} from './types.js'
import { validatePipeline } from './validate.js'

/** The partition a forwarded run event came from. */
export interface PartitionLabel {
  index: number
  count: number
}

/** A run event of a partitioned run: the executor's, with the partition it came from when it is one partition's. */
export type PartitionedRunEvent = RunEvent & { partition?: PartitionLabel }

export interface PartitionedRunOptions extends Omit<ExecuteOptions, 'onEvent'> {
  /** How many partitions to ask the source for (1 to MAX_PARTITIONS). */
  partitions: number
  onEvent(event: PartitionedRunEvent): void | Promise<void>
}

/** What one partition did in this run. */
export interface PartitionSummary {
  index: number
  /** The partition's stream settings, as the source planned them. */
  stream: unknown
  status: RunStatus
  /** True when an earlier run completed this partition: it was not read again. */
  skipped?: boolean
  stats?: RunStats
  error?: SerializedProviderError
  /** The partition's last saved resume context. */
  checkpoint?: unknown
}

export interface PartitionedRunSummary extends RunSummary {
  /** The plan the run used: partitions asked for, planned, and why fewer when they are. */
  plan?: { id: string; requested: number; count: number; reason?: string; resumed: boolean }
  partitions?: PartitionSummary[]
}

/** The plan as stored next to the checkpoints (the "context" of the plan key). */
export interface StoredPlan {
  version: 1
  id: string
  /** sha256 of the canonical JSON of the source node's validated stream settings: a changed source is not resumed with an old plan. */
  source: string
  requested: number
  reason?: string
  partitions: { stream: unknown; done: boolean }[]
}

const PLAN_SUFFIX = '__partitions'

/** Where the plan of a pipeline's partitioned source is stored: `<pipelineId>__partitions.<nodeId>`. */
export function planKey(pipelineId: string): string {
  return `${pipelineId}${PLAN_SUFFIX}`
}

/**
 * The pipeline id a partition runs under, so its checkpoint (`<id>.<nodeId>`) and a sink's
 * exactly-once offset key (`<id>/<source>/<sink>`) are its own: `<pipelineId>__p<planId>_<index>`
 * (a long pipeline id is shortened with a digest, to stay within the 128 characters of an id).
 */
export function partitionPipelineId(pipelineId: string, planId: string, index: number): string {
  const base =
    pipelineId.length <= 104
      ? pipelineId
      : `${pipelineId.slice(0, 96)}${createHash('sha256').update(pipelineId).digest('hex').slice(0, 8)}`
  return `${base}__p${planId}_${index}`
}

function sourceDigest(stream: unknown): string {
  return createHash('sha256').update(canonicalJson(stream)).digest('hex')
}

function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', message })
}

function emptyStats(): RunStats {
  return { nodes: {}, failedItems: 0, refusedItems: 0, deadLettered: 0, durationMs: 0 }
}

function addNodes(into: Record<string, NodeStats>, nodes: Record<string, NodeStats>): void {
  for (const [id, stats] of Object.entries(nodes)) {
    into[id] ??= { items: 0, bytes: 0, failed: 0 }
    const total = into[id]
    total.items += stats.items
    total.bytes += stats.bytes
    total.failed += stats.failed
  }
}

/**
 * Run a pipeline's single source in partitions, concurrently in this process. A source whose
 * provider cannot split (no `partition` capability) runs as an ordinary run. The run completes
 * when every partition has; the first partition that fails stops the others (they save their
 * checkpoints) and fails the run with its error; a cancel reaches every partition.
 */
export async function executePartitioned(
  options: PartitionedRunOptions,
): Promise<PartitionedRunSummary> {
  const { pipeline, registry, checkpoints, runId } = options
  const logger =
    (options.logger ?? silentLogger).child?.({ runId, pipelineId: pipeline.id }) ??
    options.logger ??
    silentLogger
  const startedAt = Date.now()
  let events: Promise<void> = Promise.resolve()
  const emit = (event: PartitionedRunEvent) => {
    events = events
      .then(() => options.onEvent(event))
      .catch((error) =>
        logger.warn(
          { err: toProviderError(error).toJSON(), event: event.type },
          'run event handler failed',
        ),
      )
  }
  const fail = async (error: ProviderError): Promise<PartitionedRunSummary> => {
    logger.error({ err: error.toJSON() }, 'run failed')
    emit({ type: 'failed', error: error.toJSON() })
    await events
    const stats = { ...emptyStats(), durationMs: Date.now() - startedAt }
    return { status: 'failed', stats, error: error.toJSON(), checkpoints: {} }
  }

  // An invalid pipeline fails as an ordinary run does, with every issue.
  if (validatePipeline(pipeline, registry).length > 0)
    return executePipeline({ ...options, onEvent: (event) => options.onEvent(event) })
  const sources = pipeline.nodes.filter((node) => node.role === 'source')
  if (sources.length !== 1)
    return fail(
      configError(
        `partitioned runs split one source: pipeline ${pipeline.id} has ${sources.length} source nodes (${sources.map((s) => s.id).join(', ')})`,
      ),
    )
  const source = sources[0]!
  const provider = registry.get(source.provider)!
  if (!provider.capabilities.partition) {
    logger.warn(
      { nodeId: source.id, provider: provider.id },
      `source ${source.id}: provider ${provider.id} cannot split a stream into partitions; running it as one`,
    )
    return executePipeline({ ...options, onEvent: (event) => options.onEvent(event) })
  }
  let plan: StoredPlan
  let resumed = false
  try {
    ;({ plan, resumed } = await loadOrMakePlan(options, source, provider, logger))
  } catch (error) {
    if (options.signal.aborted) {
      // Cancelled while planning: nothing was read.
      const reason = options.signal.reason
      const message =
        reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : undefined
      emit({ type: 'cancelled', ...(message ? { reason: message } : {}), checkpoints: {} })
      await events
      const stats = { ...emptyStats(), durationMs: Date.now() - startedAt }
      return { status: 'cancelled', stats, checkpoints: {} }
    }
    return fail(toProviderError(error))
  }
  const count = plan.partitions.length
  logger.info(
    {
      nodeId: source.id,
      partitions: count,
      requested: plan.requested,
      resumed,
      done: plan.partitions.filter((p) => p.done).length,
      ...(plan.reason ? { reason: plan.reason } : {}),
    },
    `source ${source.id}: ${resumed ? 'resuming' : 'planned'} ${count} partition(s)${plan.reason ? ` (${plan.reason})` : ''}`,
  )
  emit({ type: 'started' })

  // Every partition stops when the run is cancelled or another partition fails.
  const stop = new AbortController()
  const outer = options.signal
  const onCancel = () => stop.abort(outer.reason ?? new Error('cancelled'))
  if (outer.aborted) onCancel()
  else outer.addEventListener('abort', onCancel, { once: true })

  const latest = new Map<number, Record<string, NodeStats>>()
  const finished: Record<string, NodeStats> = {}
  const progressNodes = () => {
    const nodes: Record<string, NodeStats> = {}
    addNodes(nodes, finished)
    for (const stats of latest.values()) addNodes(nodes, stats)
    return nodes
  }
  const progressTimer = setInterval(
    () => emit({ type: 'progress', nodes: progressNodes() }),
    options.progressIntervalMs ?? 1000,
  )

  const preparingSinks = pipeline.nodes.filter(
    (node) => node.role === 'sink' && registry.get(node.provider)?.capabilities.prepare,
  ).length
  const results = new Map<number, RunSummary>()
  let firstFailure: { index: number; error: SerializedProviderError } | undefined
  let planSaves: Promise<void> = Promise.resolve()

  // The first partition to start prepares the sinks; its `prepared` events are the run's.
  const runPartition = async (
    index: number,
    first: boolean,
    onPrepared?: () => void,
  ): Promise<void> => {
    const partition = plan.partitions[index]!
    const label = { index, count }
    let prepared = 0
    const summary = await executePipeline({
      ...options,
      pipeline: {
        ...pipeline,
        id: partitionPipelineId(pipeline.id, plan.id, index),
        nodes: pipeline.nodes.map((node) =>
          node.id === source.id
            ? { ...node, stream: structuredClone(partition.stream) as Record<string, unknown> }
            : node,
        ),
      },
      logger: logger.child?.({ partition: index }) ?? logger,
      signal: stop.signal,
      // A partition of a new plan has nothing stored under its keys; one of a resumed plan resumes.
      resume: resumed,
      onEvent: (event) => {
        switch (event.type) {
          case 'progress':
            latest.set(index, event.nodes)
            return
          case 'prepared':
            if (onPrepared && ++prepared >= preparingSinks) onPrepared()
            if (first) emit({ ...event, partition: label })
            return
          case 'checkpoint':
          case 'item_failed':
            emit({ ...event, partition: label })
            return
          default:
            // started and the outcome are the run's, emitted once for all partitions.
            return
        }
      },
    })
    latest.delete(index)
    addNodes(finished, summary.stats.nodes)
    results.set(index, summary)
    if (summary.status === 'completed' || summary.status === 'partial') {
      partition.done = true
      const save = planSaves.then(() =>
        checkpoints.save(planKey(pipeline.id), source.id, plan, runId),
      )
      planSaves = save.catch(() => {})
      await save
      logger.info(
        { partition: index, status: summary.status },
        `partition ${index} of ${count} ${summary.status}`,
      )
    } else if (summary.status === 'failed' && !firstFailure) {
      firstFailure = { index, error: summary.error! }
      stop.abort(new Error(`partition ${index} of ${count} failed`))
    }
  }

  const guarded = (index: number, first: boolean, onPrepared?: () => void) =>
    runPartition(index, first, onPrepared).catch((error) => {
      // Saving the plan failed (the store is gone): the run fails; the partition's checkpoint is saved.
      const failure = toProviderError(error)
      if (!firstFailure) firstFailure = { index, error: failure.toJSON() }
      stop.abort(failure)
    })

  try {
    const pending = plan.partitions.flatMap((p, index) => (p.done ? [] : [index]))
    const [first, ...rest] = pending
    if (first !== undefined) {
      if (preparingSinks > 0 && rest.length > 0) {
        // One partition prepares the sinks (creates tables...) before the others start, so
        // they do not race to create the same destination.
        let release!: () => void
        const ready = new Promise<void>((resolve) => {
          release = resolve
        })
        const firstRun = guarded(first, true, release)
        await Promise.race([ready, firstRun])
        await Promise.all([
          firstRun,
          ...(stop.signal.aborted ? [] : rest.map((i) => guarded(i, false))),
        ])
      } else {
        await Promise.all(pending.map((i) => guarded(i, i === first)))
      }
    }
    await planSaves
  } finally {
    clearInterval(progressTimer)
    outer.removeEventListener('abort', onCancel)
  }

  const partitions: PartitionSummary[] = []
  const stats: RunStats = { ...emptyStats(), nodes: {} }
  for (const [index, partition] of plan.partitions.entries()) {
    const summary = results.get(index)
    const entry: PartitionSummary = {
      index,
      stream: partition.stream,
      status: summary?.status ?? 'cancelled',
    }
    if (summary) {
      entry.stats = summary.stats
      if (summary.error) entry.error = summary.error
      stats.failedItems += summary.stats.failedItems
      stats.refusedItems += summary.stats.refusedItems
      stats.deadLettered += summary.stats.deadLettered
    } else if (partition.done) {
      entry.status = 'completed'
      entry.skipped = true
    }
    const checkpoint =
      summary?.checkpoints[source.id] ??
      (await checkpoints
        .load(partitionPipelineId(pipeline.id, plan.id, index), source.id)
        .catch(() => undefined))
    if (checkpoint !== undefined) entry.checkpoint = checkpoint
    partitions.push(entry)
  }
  addNodes(stats.nodes, finished)
  stats.durationMs = Date.now() - startedAt
  emit({ type: 'progress', nodes: stats.nodes })
  const planInfo = {
    id: plan.id,
    requested: plan.requested,
    count,
    ...(plan.reason ? { reason: plan.reason } : {}),
    resumed,
  }
  const contexts = Object.fromEntries(partitions.map((p) => [String(p.index), p.checkpoint]))
  let summary: PartitionedRunSummary
  const budget = pipeline.options?.failureBudget
  const allowed = budget === undefined ? 0 : budget
  if (firstFailure) {
    const error = new ProviderError({
      kind: firstFailure.error.kind,
      message: `partition ${firstFailure.index} of ${count} failed: ${firstFailure.error.message}`,
      ...(firstFailure.error.providerId ? { providerId: firstFailure.error.providerId } : {}),
      ...(firstFailure.error.code ? { code: firstFailure.error.code } : {}),
      ...(firstFailure.error.issues ? { issues: firstFailure.error.issues } : {}),
    }).toJSON()
    summary = { status: 'failed', stats, error, checkpoints: {}, plan: planInfo, partitions }
    emit({ type: 'failed', error })
  } else if (outer.aborted || partitions.some((p) => p.status === 'cancelled')) {
    const reason =
      outer.reason instanceof Error
        ? outer.reason.message
        : typeof outer.reason === 'string'
          ? outer.reason
          : undefined
    summary = { status: 'cancelled', stats, checkpoints: {}, plan: planInfo, partitions }
    emit({
      type: 'cancelled',
      ...(reason ? { reason } : {}),
      checkpoints: {},
      partitions: contexts,
    } as PartitionedRunEvent)
  } else if (allowed !== null && stats.refusedItems > allowed) {
    // Each partition had the whole budget; together they spent more.
    const error = new ProviderError({
      kind: 'data',
      message: `failure budget spent: ${stats.refusedItems} items refused across ${count} partitions, the pipeline allows ${allowed}`,
    }).toJSON()
    summary = { status: 'failed', stats, error, checkpoints: {}, plan: planInfo, partitions }
    emit({ type: 'failed', error })
  } else if (stats.refusedItems > 0) {
    summary = { status: 'partial', stats, checkpoints: {}, plan: planInfo, partitions }
    emit({ type: 'partial', stats })
  } else {
    summary = { status: 'completed', stats, checkpoints: {}, plan: planInfo, partitions }
    emit({ type: 'completed', stats })
  }
  await events
  return summary
}

/** What `loadOrMakePlan` needs of a run's options. */
export type PlanOptions = Pick<
  ExecuteOptions,
  | 'pipeline'
  | 'checkpoints'
  | 'runId'
  | 'resume'
  | 'signal'
  | 'resolveConnection'
  | 'retryBaseDelayMs'
> & { partitions: number }

/**
 * The plan of a partitioned run: the stored one when the run resumes (checked against the
 * source's settings and the provider; a completed plan is read on from each partition's
 * checkpoint), else a new one from the source's `partition`, saved before anything is read.
 */
export async function loadOrMakePlan(
  options: PlanOptions,
  source: PipelineNode,
  provider: Provider,
  logger: Logger,
): Promise<{ plan: StoredPlan; resumed: boolean }> {
  const { pipeline, checkpoints, runId } = options
  const stream = provider.validateStream(structuredClone(source.stream))
  const digest = sourceDigest(stream)
  const resume = options.resume !== false
  const stored = resume ? await checkpoints.load(planKey(pipeline.id), source.id) : undefined
  if (stored !== undefined) {
    const plan = checkStoredPlan(stored, provider, digest, pipeline, source)
    if (plan.requested !== options.partitions)
      logger.warn(
        { stored: plan.partitions.length, requested: options.partitions },
        `resuming the stored plan of ${plan.partitions.length} partition(s) of source ${source.id}; a different partition count takes effect with --no-resume`,
      )
    if (plan.partitions.every((p) => p.done)) {
      // The last partitioned run completed: this one reads on from each partition's checkpoint.
      for (const partition of plan.partitions) partition.done = false
      await checkpoints.save(planKey(pipeline.id), source.id, plan, runId)
    }
    return { plan, resumed: true }
  }
  if (resume && (await checkpoints.load(pipeline.id, source.id)) !== undefined)
    throw configError(
      `source node ${source.id} has a checkpoint of an unpartitioned run: it cannot be split into partitions where it stopped; run without --partitions to resume it, or with --no-resume to read the stream again in partitions`,
    )
  const plan = await makePlan(options, provider, source, stream, digest, logger)
  await checkpoints.save(planKey(pipeline.id), source.id, plan, runId)
  return { plan, resumed: false }
}

/**
 * Mark partitions of the stored plan `planId` as completed, so a resumed run does not read them
 * again. Does nothing when another plan has replaced it since.
 */
export async function markPartitionsDone(
  checkpoints: ExecuteOptions['checkpoints'],
  pipelineId: string,
  sourceNodeId: string,
  planId: string,
  indices: readonly number[],
  runId: string,
): Promise<void> {
  const stored = (await checkpoints.load(planKey(pipelineId), sourceNodeId)) as
    | StoredPlan
    | undefined
  if (!stored || stored.id !== planId || !Array.isArray(stored.partitions)) return
  for (const index of indices) {
    const partition = stored.partitions[index]
    if (partition) partition.done = true
  }
  await checkpoints.save(planKey(pipelineId), sourceNodeId, stored, runId)
}

/** Ask the source for partitions (with the run's retries) and describe them as a plan to store. */
async function makePlan(
  options: PlanOptions,
  provider: Provider,
  source: PipelineNode,
  stream: unknown,
  digest: string,
  logger: Logger,
): Promise<StoredPlan> {
  const retryOptions = {
    maxAttempts: options.pipeline.options?.maxAttempts ?? DEFAULTS.maxAttempts,
    signal: options.signal,
    baseDelayMs: options.retryBaseDelayMs ?? 200,
  }
  const input = await options.resolveConnection(source)
  const connection = await retry(
    () =>
      provider.connect(input, {
        signal: options.signal,
        logger: logger.child?.({ nodeId: source.id }) ?? logger,
      }),
    retryOptions,
  )
  try {
    const result = await retry(
      () => connection.partition(stream, { count: options.partitions, signal: options.signal }),
      retryOptions,
    )
    const plan: StoredPlan = {
      version: 1,
      id: randomBytes(4).toString('hex'),
      source: digest,
      requested: options.partitions,
      partitions: result.partitions.map((partition) => ({ stream: partition, done: false })),
    }
    if (result.reason !== undefined) plan.reason = result.reason
    return plan
  } catch (error) {
    const cause = toProviderError(error)
    throw new ProviderError({
      kind: cause.kind,
      providerId: provider.id,
      operation: 'partition',
      message: `planning the partitions of source node ${source.id} failed: ${cause.message}`,
      ...(cause.issues ? { issues: cause.issues } : {}),
      cause,
    })
  } finally {
    await connection.close().catch(() => {})
  }
}

/** A stored plan, checked: its shape, every partition against the provider, and that the source is the one it was made for. */
function checkStoredPlan(
  stored: unknown,
  provider: Provider,
  digest: string,
  pipeline: Pipeline,
  source: PipelineNode,
): StoredPlan {
  const where = `the stored partition plan of source node ${source.id} (checkpoint key ${planKey(pipeline.id)}.${source.id})`
  const value = stored as Partial<StoredPlan> | null
  if (
    value === null ||
    typeof value !== 'object' ||
    value.version !== 1 ||
    typeof value.id !== 'string' ||
    !/^[0-9a-f]{8}$/.test(value.id) ||
    typeof value.source !== 'string' ||
    typeof value.requested !== 'number' ||
    !Array.isArray(value.partitions) ||
    value.partitions.length === 0 ||
    !value.partitions.every(
      (p) => p !== null && typeof p === 'object' && typeof p.done === 'boolean',
    )
  )
    throw configError(
      `${where} is not a plan this runtime wrote; run with --no-resume to plan again`,
    )
  if (value.source !== digest)
    throw configError(
      `${where} was made for other stream settings of the source: run with --no-resume to plan the partitions of the new settings (or restore the old ones to resume)`,
    )
  value.partitions.forEach((partition, index) => {
    try {
      partition.stream = provider.validateStream(structuredClone(partition.stream))
    } catch (error) {
      throw configError(
        `${where}: partition ${index} is not valid ${provider.id} stream settings (${ProviderError.isInstance(error) && error.issues ? formatIssues(error.issues) : (error as Error).message}); run with --no-resume to plan again`,
      )
    }
  })
  return value as StoredPlan
}
