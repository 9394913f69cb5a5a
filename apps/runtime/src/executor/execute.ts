import {
  approximateSize,
  type ByteSource,
  backoffDelay,
  type ConnectInput,
  canCopyServerSide,
  canonicalJson,
  type Data,
  type DataKind,
  describeItem,
  formatIssues,
  type GuardedConnection,
  isAbortError,
  type Logger,
  type Provider,
  ProviderError,
  raceAbort,
  readBytes,
  retry,
  type SerializedProviderError,
  type StreamSchema,
  silentLogger,
  sleep,
  toProviderError,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import { AckTracker, PartCounter } from './ack-tracker.js'
import {
  type Converter,
  convertAll,
  converterFor,
  convertOptions,
  declaredSchema,
  isConversionFailure,
} from './convert.js'
import { BoundedQueue } from './queue.js'
import type { ExecuteOptions, NodeStats, RunEvent, RunStats, RunSummary } from './types.js'
import { nodeDataKind, validatePipeline } from './validate.js'

export const DEFAULTS = {
  checkpointEveryItems: 10_000,
  checkpointEverySeconds: 5,
  queueCapacity: 4,
  maxAttempts: 5,
  concurrency: 1,
  /** Items buffered between a source and one edge's batcher. */
  itemBuffer: 16,
  /** Streamed blob bodies up to this size are read into memory so a retry or a second sink can send them again. */
  bufferBlobBytes: 8 * 1024 * 1024,
  /** The largest streamed blob read into memory to fan out to several sinks. */
  maxFanOutBlobBytes: 64 * 1024 * 1024,
} as const

/** What a blob copied server-side weighs when a batch is closed by bytes (one request). */
const COPY_REQUEST_BYTES = 1024

/**
 * A streamed blob body that is read into memory on first use and then shared: by every sink
 * of the source, by a retry, by a conversion. The source loop only wraps the body; the sink
 * reads it when it writes that item, at its own concurrency, so each object's download runs
 * right before its upload and overlaps the other items' transfers, and only the batches in
 * flight hold bytes.
 */
class BufferedBody implements AsyncIterable<Uint8Array> {
  #source: ByteSource | undefined
  #bytes: Promise<Uint8Array> | undefined
  #size: number | undefined
  readonly #fail: (error: unknown) => ProviderError

  constructor(source: ByteSource, fail: (error: unknown) => ProviderError) {
    this.#source = source
    this.#fail = fail
  }

  /** The body's length once it has been read. */
  get size(): number | undefined {
    return this.#size
  }

  load(): Promise<Uint8Array> {
    if (!this.#bytes) {
      const source = this.#source!
      this.#source = undefined
      this.#bytes = readBytes(source, DEFAULTS.maxFanOutBlobBytes).then(
        (body) => {
          this.#size = body.byteLength
          return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
        },
        (error) => {
          throw this.#fail(error)
        },
      )
    }
    return this.#bytes
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    yield await this.load()
  }
}

interface Item {
  seq: number
  data: Data
  /** Bytes for batching and progress, computed once per item (see `sizeOf`). */
  size: number
  /** One of several items a conversion made of source item `seq` (acknowledged through `PartCounter`). */
  part: boolean
  /** The source item's resume context (committed with the batch on an edge with offsets). */
  context: unknown
}

class Semaphore {
  #free: number
  readonly #waiting: (() => void)[] = []
  constructor(count: number) {
    this.#free = count
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return
    }
    await raceAbort(new Promise<void>((resolve) => this.#waiting.push(resolve)), signal)
  }
  release(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#free++
  }
}

interface NodeRuntime {
  node: PipelineNode
  provider: Provider
  stream: unknown
  kind: DataKind
  connection?: GuardedConnection
  stats: NodeStats
}

interface SinkRuntime extends NodeRuntime {
  semaphore: Semaphore
  deadLetter?: SinkRuntime
}

interface EdgeRuntime {
  source: SourceRuntime
  sink: SinkRuntime
  converter: Converter
  items: BoundedQueue<Item>
  batches: BoundedQueue<Item[]>
  parts: PartCounter
  /** Exactly-once appends: the key under which the sink commits the source context with each batch. */
  offsetKey: string | undefined
  /** The sink already holds items up to the one with this context (canonical JSON): skip them. */
  skipUntil: string | undefined
  /** Items skipped because the sink's offset was past them. */
  skipped: number
  /** Blobs are copied inside the store, not streamed (`canCopyServerSide`, decided at connect time). */
  serverSideCopy: boolean
}

interface SourceRuntime extends NodeRuntime {
  edges: EdgeRuntime[]
  /** The stream's columns (`describeStream`), when a sink or a conversion needs them. */
  schema: StreamSchema | undefined
  tracker: AckTracker
  after: unknown
  saved: { context: unknown; seq: number } | undefined
  lastSaveAt: number
  sinceSave: number
  saving: Promise<void> | undefined
  saveAgain: boolean
}

/** An item's bytes for batching: a buffered body not read yet counts its declared size, or the buffering threshold when it has none. */
function sizeOf(data: Data): number {
  if (data.kind === 'blob' && data.body instanceof BufferedBody)
    return data.size ?? data.body.size ?? DEFAULTS.bufferBlobBytes
  return approximateSize(data)
}

const BATCH_TIMEOUT = Symbol('batch timeout')

function serialize(error: unknown): SerializedProviderError {
  return toProviderError(error).toJSON()
}

/**
 * Run a pipeline graph: every source is read once, its items fan out to the sinks its
 * edges name (converted where the kinds differ), batched and written with bounded queues
 * in between. See the README for the checkpoint rule.
 */
export async function executePipeline(options: ExecuteOptions): Promise<RunSummary> {
  return new PipelineRun(options).execute()
}

class PipelineRun {
  readonly #options: ExecuteOptions
  readonly #pipeline: Pipeline
  readonly #logger: Logger
  readonly #controller = new AbortController()
  readonly #startedAt = Date.now()
  #failure: ProviderError | undefined
  #failedItems = 0
  #refusedItems = 0
  #deadLettered = 0
  #events: Promise<void> = Promise.resolve()
  readonly #nodes = new Map<string, NodeRuntime>()
  readonly #sources: SourceRuntime[] = []
  readonly #sinks = new Map<string, SinkRuntime>()
  readonly #edges: EdgeRuntime[] = []
  readonly #checkpoints: Record<string, unknown> = {}
  readonly #maxAttempts: number
  readonly #failureBudget: number | null

  constructor(options: ExecuteOptions) {
    this.#options = options
    this.#pipeline = options.pipeline
    this.#logger =
      (options.logger ?? silentLogger).child?.({
        runId: options.runId,
        pipelineId: options.pipeline.id,
      }) ??
      options.logger ??
      silentLogger
    this.#maxAttempts = options.pipeline.options?.maxAttempts ?? DEFAULTS.maxAttempts
    // Absent: no refused item is allowed (errors.tolerance=none); null: unlimited.
    const budget = options.pipeline.options?.failureBudget
    this.#failureBudget = budget === undefined ? 0 : budget
  }

  get #signal(): AbortSignal {
    return this.#controller.signal
  }

  #emit(event: RunEvent): void {
    this.#events = this.#events
      .then(() => this.#options.onEvent(event))
      .catch((error) =>
        this.#logger.warn({ err: serialize(error), event: event.type }, 'run event handler failed'),
      )
  }

  /** Record the run's failure and stop everything. Errors that follow a stop are its echoes and ignored, unless `force`. */
  #fail(error: unknown, force = false): void {
    if (this.#failure) return
    if (this.#signal.aborted && !force) {
      if (!isAbortError(error) && error !== this.#signal.reason) {
        this.#logger.debug({ err: serialize(error) }, 'error after the run stopped')
      }
      return
    }
    this.#failure = toProviderError(error)
    this.#logger.error({ err: this.#failure.toJSON() }, 'run failed')
    this.#controller.abort(this.#failure)
  }

  #stats(): RunStats {
    const nodes: Record<string, NodeStats> = {}
    for (const [id, runtime] of this.#nodes) nodes[id] = { ...runtime.stats }
    return {
      nodes,
      failedItems: this.#failedItems,
      refusedItems: this.#refusedItems,
      deadLettered: this.#deadLettered,
      durationMs: Date.now() - this.#startedAt,
    }
  }

  async execute(): Promise<RunSummary> {
    const issues = validatePipeline(this.#pipeline, this.#options.registry)
    if (issues.length > 0) {
      const error = new ProviderError({
        kind: 'config',
        message: `invalid pipeline: ${formatIssues(issues)}`,
        issues,
      })
      this.#emit({ type: 'failed', error: error.toJSON() })
      await this.#events
      return { status: 'failed', stats: this.#stats(), error: error.toJSON(), checkpoints: {} }
    }
    const outer = this.#options.signal
    const onCancel = () => this.#controller.abort(outer.reason ?? new Error('cancelled'))
    if (outer.aborted) onCancel()
    else outer.addEventListener('abort', onCancel, { once: true })
    this.#emit({ type: 'started' })
    const progressEvery = this.#options.progressIntervalMs ?? 1000
    const progressTimer = setInterval(
      () => this.#emit({ type: 'progress', nodes: this.#stats().nodes }),
      progressEvery,
    )
    const checkpointTimer = setInterval(() => this.#checkpointByTime(), 250)
    try {
      await this.#prepare()
      if (!this.#signal.aborted) await this.#run()
    } catch (error) {
      this.#fail(error)
    } finally {
      clearInterval(progressTimer)
      clearInterval(checkpointTimer)
      outer.removeEventListener('abort', onCancel)
    }
    // Whatever happened, save the acknowledged prefix: it never runs past an unwritten item.
    for (const source of this.#sources) {
      await this.#flushCheckpoint(source)
    }
    await Promise.all(
      [...this.#nodes.values()].map((n) =>
        n.connection
          ?.close()
          .catch((error) =>
            this.#logger.warn({ err: serialize(error), nodeId: n.node.id }, 'close failed'),
          ),
      ),
    )
    const stats = this.#stats()
    this.#emit({ type: 'progress', nodes: stats.nodes })
    let summary: RunSummary
    if (this.#failure) {
      summary = {
        status: 'failed',
        stats,
        error: this.#failure.toJSON(),
        checkpoints: this.#checkpoints,
      }
      this.#emit({ type: 'failed', error: summary.error! })
    } else if (outer.aborted) {
      const reason =
        outer.reason instanceof Error
          ? outer.reason.message
          : typeof outer.reason === 'string'
            ? outer.reason
            : undefined
      summary = { status: 'cancelled', stats, checkpoints: this.#checkpoints }
      this.#emit({
        type: 'cancelled',
        ...(reason ? { reason } : {}),
        checkpoints: this.#checkpoints,
      })
    } else if (this.#refusedItems > 0) {
      // Within the budget, but some items arrived nowhere: never "completed".
      summary = { status: 'partial', stats, checkpoints: this.#checkpoints }
      this.#logger.warn(
        { refusedItems: this.#refusedItems, failureBudget: this.#failureBudget },
        'run partial: items were refused',
      )
      this.#emit({ type: 'partial', stats })
    } else {
      summary = { status: 'completed', stats, checkpoints: this.#checkpoints }
      this.#emit({ type: 'completed', stats })
    }
    await this.#events
    return summary
  }

  async #prepare(): Promise<void> {
    const pipeline = this.#pipeline
    for (const node of pipeline.nodes) {
      const provider = this.#options.registry.get(node.provider)!
      const stream =
        node.role === 'source'
          ? provider.validateStream(structuredClone(node.stream))
          : provider.validateSinkStream(structuredClone(node.stream))
      const base: NodeRuntime = {
        node,
        provider,
        stream,
        kind: nodeDataKind(provider, node)!,
        stats: { items: 0, bytes: 0, failed: 0 },
      }
      this.#nodes.set(node.id, base)
      if (node.role === 'sink') {
        this.#sinks.set(
          node.id,
          Object.assign(base, {
            semaphore: new Semaphore(node.concurrency ?? DEFAULTS.concurrency),
          }) as SinkRuntime,
        )
      } else {
        const source = Object.assign(base, {
          edges: [],
          schema: undefined,
          tracker: undefined as unknown as AckTracker,
          after: undefined,
          saved: undefined,
          lastSaveAt: Date.now(),
          sinceSave: 0,
          saving: undefined,
          saveAgain: false,
        }) as SourceRuntime
        source.tracker = new AckTracker((n) => this.#onCommit(source, n))
        this.#sources.push(source)
      }
    }
    for (const sink of this.#sinks.values()) {
      if (sink.node.deadLetter) sink.deadLetter = this.#sinks.get(sink.node.deadLetter)
    }
    const queueCapacity = pipeline.options?.queueCapacity ?? DEFAULTS.queueCapacity
    for (const edge of pipeline.edges) {
      const source = this.#sources.find((s) => s.node.id === edge.from)!
      const sink = this.#sinks.get(edge.to)!
      const runtime: EdgeRuntime = {
        source,
        sink,
        // Set once the sources are described (a record -> message id uses the primary key).
        converter: undefined as unknown as Converter,
        items: new BoundedQueue(DEFAULTS.itemBuffer),
        batches: new BoundedQueue(queueCapacity),
        parts: new PartCounter((seq) => source.tracker.ack(seq)),
        offsetKey: undefined,
        skipUntil: undefined,
        skipped: 0,
        serverSideCopy: false,
      }
      source.edges.push(runtime)
      this.#edges.push(runtime)
    }
    // Resume contexts first: a bad stored checkpoint fails before any connection opens.
    if (this.#options.resume !== false) {
      for (const source of this.#sources) {
        const stored = await this.#options.checkpoints.load(pipeline.id, source.node.id)
        if (stored !== undefined) {
          try {
            source.after = source.provider.validateContext(structuredClone(stored))
          } catch (error) {
            throw new ProviderError({
              kind: 'config',
              providerId: source.provider.id,
              message: `stored checkpoint of node ${source.node.id} does not fit provider ${source.provider.id}: ${(error as Error).message}`,
              cause: error,
            })
          }
          this.#checkpoints[source.node.id] = stored
          this.#logger.info({ nodeId: source.node.id }, 'resuming after stored checkpoint')
        }
      }
    }
    // Kept only until the edges are planned: server-side copies compare the two ends' inputs.
    const inputs = new Map<string, ConnectInput>()
    await Promise.all(
      [...this.#nodes.values()].map(async (runtime) => {
        const input = await this.#options.resolveConnection(runtime.node)
        inputs.set(runtime.node.id, input)
        runtime.connection = await retry(
          () =>
            runtime.provider.connect(input, {
              signal: this.#signal,
              logger: this.#logger.child?.({ nodeId: runtime.node.id }) ?? this.#logger,
            }),
          this.#retryOptions(runtime.node.id, 'connect'),
        )
      }),
    )
    await this.#describeSources()
    for (const edge of this.#edges) {
      edge.converter = converterFor(edge.source.kind, edge.sink.kind, edge.sink.node.convert, {
        sourceNodeId: edge.source.node.id,
        primaryKey: edge.source.schema?.primaryKey,
      })!
    }
    this.#planServerSideCopies(inputs)
    await this.#prepareSinks()
    await this.#resumeFromOffsets()
  }

  /**
   * A blob -> blob edge whose source and sink are one provider with deep-equal credentials at
   * one place (the provider's `serverSideCopy` decides) has its blobs copied inside the store:
   * the sink's writes get `serverSideCopy`, and the bodies are never opened unless the store
   * refuses a copy. Batching, checkpoints, retries and failures are the same as streamed.
   */
  #planServerSideCopies(inputs: ReadonlyMap<string, ConnectInput>): void {
    for (const edge of this.#edges) {
      const { source, sink } = edge
      if (source.kind !== 'blob' || sink.kind !== 'blob') continue
      const from = inputs.get(source.node.id)
      const to = inputs.get(sink.node.id)
      if (!from || !to) continue
      edge.serverSideCopy = canCopyServerSide(
        { provider: source.provider, input: from, stream: source.stream },
        { provider: sink.provider, input: to, stream: sink.stream },
      )
      if (edge.serverSideCopy)
        this.#logger.info(
          { nodeId: sink.node.id, sourceNodeId: source.node.id },
          `sink ${sink.node.id}: copying objects server-side from source ${source.node.id} (same ${sink.provider.id} endpoint and credentials); bodies do not pass through the runtime`,
        )
    }
  }

  /** Describe the sources whose columns a sink's `prepare` or a record -> message id needs. */
  async #describeSources(): Promise<void> {
    await Promise.all(
      this.#sources.map(async (source) => {
        if (!source.provider.capabilities.describeStream || source.kind !== 'record') return
        const needed = source.edges.some((edge) =>
          needsSourceSchema(edge.sink.kind, edge.sink.provider.capabilities, edge.sink.node),
        )
        if (!needed) return
        try {
          source.schema = await retry(
            () => source.connection!.describeStream(source.stream, { signal: this.#signal }),
            this.#retryOptions(source.node.id, 'describe'),
          )
        } catch (error) {
          const cause = toProviderError(error)
          throw new ProviderError({
            kind: cause.kind,
            providerId: source.provider.id,
            operation: 'describe',
            message: `describing the stream of source node ${source.node.id} failed: ${cause.message}`,
            cause,
          })
        }
      }),
    )
  }

  /**
   * Create, evolve or check each sink's destination before anything is read (sinks whose
   * provider declares `prepare`), from the schema of what flows into it.
   */
  async #prepareSinks(): Promise<void> {
    const schemas = new Map<string, StreamSchema | undefined>()
    for (const sink of this.#sinks.values()) {
      if (!this.#edges.some((e) => e.sink === sink)) continue
      schemas.set(sink.node.id, sinkSchema(sink, this.#edges))
    }
    // A dead-letter sink of the same kind gets the schema of the sink it serves.
    for (const sink of this.#sinks.values()) {
      const dead = sink.deadLetter
      if (dead && dead.kind === sink.kind && !schemas.get(dead.node.id))
        schemas.set(dead.node.id, schemas.get(sink.node.id))
    }
    for (const sink of this.#sinks.values()) {
      if (!sink.provider.capabilities.prepare) continue
      const schema = schemas.get(sink.node.id)
      let result: { existed: boolean; actions: string[] }
      try {
        result = await retry(
          () =>
            sink.connection!.prepare(sink.stream, {
              signal: this.#signal,
              ...(schema ? { schema } : {}),
            }),
          this.#retryOptions(sink.node.id, 'prepare'),
        )
      } catch (error) {
        const cause = toProviderError(error)
        throw new ProviderError({
          kind: cause.kind,
          providerId: sink.provider.id,
          operation: 'prepare',
          message: `preparing the destination of sink node ${sink.node.id} failed: ${cause.message}`,
          cause,
        })
      }
      if (result.actions.length > 0)
        this.#logger.info(
          { nodeId: sink.node.id, existed: result.existed, actions: result.actions },
          `sink ${sink.node.id}: ${result.existed ? 'destination evolved' : 'destination created'}`,
        )
      this.#emit({
        type: 'prepared',
        nodeId: sink.node.id,
        existed: result.existed,
        actions: result.actions,
      })
    }
  }

  /**
   * Exactly-once appends: on each edge whose sink commits offsets (with concurrency 1 and a
   * one-to-one conversion) every batch carries the context of its last source item, and a
   * resumed run starts from what the sink holds rather than from the runtime's checkpoint
   * (which may lag: it is saved after the sink commits).
   */
  async #resumeFromOffsets(): Promise<void> {
    for (const edge of this.#edges) {
      const sink = edge.sink
      if (!sink.provider.capabilities.offsets) continue
      const concurrency = sink.node.concurrency ?? DEFAULTS.concurrency
      if (concurrency !== 1 || edge.converter.many) {
        // Offsets commit the last context of each batch in source order: with batches written
        // concurrently, or several items per source item, a committed offset could pass an
        // uncommitted batch, so they are off and a resumed append may write a batch again.
        const why =
          concurrency !== 1
            ? `concurrency ${concurrency} (offsets need 1)`
            : `the conversion ${edge.source.kind} -> ${sink.kind} yields several items per source item`
        this.#logger.warn(
          { nodeId: sink.node.id, sourceNodeId: edge.source.node.id },
          `sink ${sink.node.id}: exactly-once offsets are off because of ${why}; after a crash a resumed run may write the last unacknowledged batches again (an upsert mode makes that harmless)`,
        )
        continue
      }
      edge.offsetKey = `${this.#pipeline.id}/${edge.source.node.id}/${sink.node.id}`
    }
    if (this.#options.resume === false) return
    for (const source of this.#sources) {
      const stored = new Map<EdgeRuntime, unknown>()
      for (const edge of source.edges) {
        if (edge.offsetKey === undefined) continue
        const key = edge.offsetKey
        const offset = await retry(
          () => edge.sink.connection!.readOffset(edge.sink.stream, key, { signal: this.#signal }),
          this.#retryOptions(edge.sink.node.id, 'readOffset'),
        )
        if (offset === undefined || offset === null) continue
        try {
          stored.set(edge, source.provider.validateContext(structuredClone(offset)))
        } catch (error) {
          throw new ProviderError({
            kind: 'config',
            providerId: edge.sink.provider.id,
            message: `the offset sink node ${edge.sink.node.id} holds under ${JSON.stringify(key)} is no resume context of source node ${source.node.id} (provider ${source.provider.id}): ${(error as Error).message}`,
            cause: error,
          })
        }
      }
      if (stored.size === 0) continue
      const only = source.edges.length === 1 ? source.edges[0]! : undefined
      if (only && stored.has(only)) {
        // The sink's offset is at least as far as the checkpoint: start after it.
        source.after = stored.get(only)
        this.#logger.info(
          { nodeId: source.node.id, sinkNodeId: only.sink.node.id },
          "resuming after the sink's committed offset",
        )
        continue
      }
      const from = source.after === undefined ? undefined : canonicalJson(source.after)
      for (const [edge, offset] of stored) {
        const at = canonicalJson(offset)
        if (at === from) continue
        edge.skipUntil = at
        this.#logger.info(
          { nodeId: source.node.id, sinkNodeId: edge.sink.node.id },
          'sink is ahead of the checkpoint: skipping the items it already holds',
        )
      }
    }
  }

  #retryOptions(nodeId: string, operation: string) {
    return {
      maxAttempts: this.#maxAttempts,
      signal: this.#signal,
      baseDelayMs: this.#options.retryBaseDelayMs ?? 200,
      onRetry: ({
        attempt,
        delayMs,
        error,
      }: {
        attempt: number
        delayMs: number
        error: ProviderError
      }) =>
        this.#logger.warn(
          { nodeId, operation, attempt, delayMs, err: error.toJSON() },
          `${operation} failed, retrying`,
        ),
    }
  }

  async #run(): Promise<void> {
    const tasks: Promise<void>[] = []
    const guard = (promise: Promise<void>) =>
      tasks.push(promise.catch((error) => this.#fail(error)))
    const onAbort = () => {
      const reason = this.#signal.reason
      for (const edge of this.#edges) {
        edge.items.fail(reason)
        edge.batches.fail(reason)
      }
    }
    this.#signal.addEventListener('abort', onAbort, { once: true })
    try {
      for (const edge of this.#edges) {
        guard(this.#batchEdge(edge))
        for (let i = 0; i < (edge.sink.node.concurrency ?? DEFAULTS.concurrency); i++)
          guard(this.#writeEdge(edge))
      }
      for (const source of this.#sources) guard(this.#readSource(source))
      await Promise.all(tasks)
    } finally {
      this.#signal.removeEventListener('abort', onAbort)
    }
  }

  async *#readWithRetry(source: SourceRuntime): AsyncGenerator<{ data: Data; context: unknown }> {
    const connection = source.connection!
    let after = source.after
    let attempt = 0
    while (true) {
      try {
        for await (const item of connection.read(source.stream, { after, signal: this.#signal })) {
          attempt = 0
          after = item.context
          yield item
        }
        return
      } catch (raw) {
        if (this.#signal.aborted) throw raw
        const error = toProviderError(raw)
        attempt++
        if (!error.retryable || attempt >= this.#maxAttempts) throw error
        let delayMs = backoffDelay(attempt, this.#options.retryBaseDelayMs ?? 200, 30_000)
        if (error.kind === 'rate_limited' && error.retryAfterMs !== undefined)
          delayMs = Math.max(delayMs, error.retryAfterMs)
        this.#logger.warn(
          { nodeId: source.node.id, attempt, delayMs, err: error.toJSON() },
          'read failed, resuming after the last item',
        )
        await sleep(delayMs, this.#signal)
      }
    }
  }

  async #readSource(source: SourceRuntime): Promise<void> {
    const fanOut = source.edges.length
    for await (const item of this.#readWithRetry(source)) {
      const data = this.#prepareItem(source, item.data, fanOut)
      const size = sizeOf(data)
      source.stats.items++
      // A blob body not read yet counts its declared size in progress, not the batching guess.
      source.stats.bytes +=
        data.kind === 'blob' && data.body instanceof BufferedBody ? (data.size ?? 0) : size
      const seq = source.tracker.register(item.context, fanOut)
      for (const edge of source.edges) {
        if (edge.skipUntil !== undefined) {
          // The sink committed this item with an earlier run's batch: acknowledge, do not write.
          edge.skipped++
          if (canonicalJson(item.context) === edge.skipUntil) {
            edge.skipUntil = undefined
            this.#logger.info(
              { nodeId: source.node.id, sinkNodeId: edge.sink.node.id, skipped: edge.skipped },
              'reached the offset the sink holds; writing from here',
            )
          }
          source.tracker.ack(seq)
          continue
        }
        const converter = edge.converter
        if (!converter.many) {
          const converted = converter.convert(data, item.context)
          if (isConversionFailure(converted)) {
            await this.#itemFailed(edge.sink, data, undefined, converted.error, converted.item)
            source.tracker.ack(seq)
            continue
          }
          const next: Item = {
            seq,
            data: converted,
            size: converted === data ? size : sizeOf(converted),
            part: false,
            context: item.context,
          }
          if (!edge.items.offer(next)) await edge.items.push(next)
          continue
        }
        for await (const converted of converter.convert(data, item.context)) {
          if (isConversionFailure(converted)) {
            await this.#itemFailed(edge.sink, data, undefined, converted.error, converted.item)
            continue
          }
          edge.parts.add(seq)
          await edge.items.push({
            seq,
            data: converted,
            size: sizeOf(converted),
            part: true,
            context: item.context,
          })
        }
        edge.parts.seal(seq)
      }
    }
    for (const edge of source.edges) {
      if (edge.skipUntil !== undefined && !this.#signal.aborted)
        throw new ProviderError({
          kind: 'internal',
          providerId: source.provider.id,
          message: `source node ${source.node.id} ended without reaching the offset sink node ${edge.sink.node.id} committed under ${JSON.stringify(edge.offsetKey)} (skipped ${edge.skipped} items): the sink holds items this read did not yield, so the run stops instead of writing past them; check that the source stream is the one the sink was filled from, or run without resume`,
        })
    }
    for (const edge of source.edges) edge.items.close()
  }

  /**
   * Streamed blob bodies that may be sent more than once (a second sink, a retry) are wrapped
   * to be read into memory by their first consumer; larger single-sink bodies stream once.
   */
  #prepareItem(source: SourceRuntime, data: Data, fanOut: number): Data {
    if (data.kind !== 'blob' || data.body instanceof Uint8Array) return data
    const small = data.size !== undefined && data.size <= DEFAULTS.bufferBlobBytes
    if (!small && fanOut <= 1) {
      // Too large to buffer: the body streams once. A retry must not send a drained stream as an empty file.
      const body = data.body
      let sent = false
      const once: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]() {
          if (sent) {
            throw new ProviderError({
              kind: 'internal',
              operation: 'write',
              message: `${describeItem(data)} streams (larger than ${DEFAULTS.bufferBlobBytes} bytes) and was already sent once; it cannot be resent by a retry`,
            })
          }
          sent = true
          return body[Symbol.asyncIterator]()
        },
      }
      return { ...data, body: once }
    }
    const body = new BufferedBody(
      data.body,
      (error) =>
        new ProviderError({
          kind: 'data',
          providerId: source.provider.id,
          operation: 'read',
          message: `${describeItem(data)} could not be buffered to send to ${fanOut} sink${fanOut === 1 ? '' : 's'}: ${(error as Error).message}`,
          cause: error,
        }),
    )
    return { ...data, body }
  }

  /**
   * Group an edge's items into batches that close on item count, bytes or age (the first
   * item's), whichever comes first; an item larger than `maxBytes` travels alone. Items
   * already buffered are taken without waiting (no promise per item); only an empty buffer
   * is waited on, raced against the batch's one deadline timer. A read still pending when
   * the deadline closes a batch is kept for the next one, so nothing is lost or reordered.
   * An abort reaches this loop through the queue: `#run` fails `edge.items`.
   */
  async #batchEdge(edge: EdgeRuntime): Promise<void> {
    const limits = edge.sink.node.batch ?? {}
    const maxItems = Math.max(1, limits.maxItems ?? 1000)
    const maxBytes = Math.max(1, limits.maxBytes ?? 8 * 1024 * 1024)
    const maxAgeMs = limits.maxAgeMs ?? 1000
    const queue = edge.items
    let pending: Promise<IteratorResult<Item>> | undefined
    let carry: Item | undefined
    let done = false
    while (!done) {
      let first = carry
      carry = undefined
      if (first === undefined) {
        const result = await (pending ?? queue.next())
        pending = undefined
        if (result.done) break
        first = result.value
      }
      const batch = [first]
      let bytes = edge.serverSideCopy ? COPY_REQUEST_BYTES : first.size
      const deadline = Date.now() + maxAgeMs
      let timer: NodeJS.Timeout | undefined
      let timeout: Promise<typeof BATCH_TIMEOUT> | undefined
      try {
        while (batch.length < maxItems && bytes < maxBytes) {
          let item = queue.takeNow()
          if (item === undefined) {
            if (queue.drained) {
              done = true
              break
            }
            if (Number.isFinite(maxAgeMs) && timeout === undefined) {
              const wait = deadline - Date.now()
              if (wait <= 0) break
              timeout = new Promise((resolve) => {
                timer = setTimeout(resolve, wait, BATCH_TIMEOUT)
              })
            }
            // Left pending when the deadline wins (Promise.race observes its rejection on abort).
            pending ??= queue.next()
            const result = timeout ? await Promise.race([pending, timeout]) : await pending
            if (result === BATCH_TIMEOUT) break
            pending = undefined
            if (result.done) {
              done = true
              break
            }
            item = result.value
          }
          // A blob copied inside the store moves no bytes through here: it weighs a request.
          const weight = edge.serverSideCopy ? COPY_REQUEST_BYTES : item.size
          if (bytes + weight > maxBytes) {
            carry = item
            break
          }
          batch.push(item)
          bytes += weight
        }
      } finally {
        if (timer !== undefined) clearTimeout(timer)
      }
      await edge.batches.push(batch)
    }
    edge.batches.close()
  }

  async #writeEdge(edge: EdgeRuntime): Promise<void> {
    const sink = edge.sink
    const connection = sink.connection!
    for await (const batch of edge.batches) {
      await sink.semaphore.acquire(this.#signal)
      try {
        const data = batch.map((item) => item.data)
        const options =
          edge.offsetKey === undefined
            ? { signal: this.#signal, serverSideCopy: edge.serverSideCopy }
            : {
                signal: this.#signal,
                serverSideCopy: edge.serverSideCopy,
                offset: { key: edge.offsetKey, context: batch[batch.length - 1]!.context },
              }
        const result = await retry(
          () => raceAbort(connection.write(sink.stream, data, options), this.#signal),
          this.#retryOptions(sink.node.id, 'write'),
        )
        const failedIndexes = new Set(result.failed.map((f) => f.index))
        sink.stats.items += result.written
        for (let index = 0; index < data.length; index++) {
          if (failedIndexes.has(index)) continue
          const item = data[index]!
          // A buffered blob body has been read by the write: count its real length.
          sink.stats.bytes +=
            item.kind === 'blob' && item.body instanceof BufferedBody
              ? (item.body.size ?? item.size ?? 0)
              : batch[index]!.size
        }
        for (const failure of result.failed) {
          await this.#itemFailed(sink, data[failure.index]!, failure.index, failure.error)
        }
      } finally {
        sink.semaphore.release()
      }
      const tracker = edge.source.tracker
      for (const item of batch) {
        if (item.part) edge.parts.ack(item.seq)
        else tracker.ack(item.seq)
      }
    }
  }

  /**
   * Report one item that failed alone and send it to the dead-letter sink. An item the
   * dead-letter sink took has arrived; one that reached no dead-letter sink is refused and
   * spends the failure budget (0 unless the pipeline sets one): past it the run fails.
   */
  async #itemFailed(
    sink: SinkRuntime,
    data: Data,
    index: number | undefined,
    error: ProviderError,
    item?: string,
  ): Promise<void> {
    sink.stats.failed++
    this.#failedItems++
    const described = item ?? describeItem(data)
    this.#emit({
      type: 'item_failed',
      nodeId: sink.node.id,
      ...(index === undefined ? {} : { index }),
      item: described,
      error: error.toJSON(),
    })
    this.#logger.warn({ nodeId: sink.node.id, item: described, err: error.toJSON() }, 'item failed')
    const deadLetter = sink.deadLetter
    let why = `${described} at node ${sink.node.id}: ${error.message}`
    if (deadLetter) {
      const refusal = await this.#deadLetter(deadLetter, data)
      if (refusal === undefined) {
        this.#deadLettered++
        return
      }
      why += `; dead-letter sink ${deadLetter.node.id} did not take it either: ${refusal}`
    }
    this.#refusedItems++
    if (this.#failureBudget !== null && this.#refusedItems > this.#failureBudget) {
      const n = this.#refusedItems
      throw new ProviderError({
        kind: 'data',
        message: `failure budget spent: ${n} item${n === 1 ? '' : 's'} refused, the pipeline allows ${this.#failureBudget}${this.#failureBudget === 0 ? ' (set options.failureBudget, or a deadLetter sink on the sink node, to let a run go on)' : ''} (last: ${why})`,
      })
    }
  }

  /** Write one failed item to a dead-letter sink: undefined when it arrived, else why not. */
  async #deadLetter(deadLetter: SinkRuntime, data: Data): Promise<string | undefined> {
    const converter = converterFor(data.kind, deadLetter.kind, deadLetter.node.convert)
    if (!converter) return `it takes ${deadLetter.kind} items, not ${data.kind}`
    const batch: Data[] = []
    for await (const converted of convertAll(converter, data, undefined)) {
      if (isConversionFailure(converted)) return converted.error.message
      batch.push(converted)
    }
    if (batch.length === 0) return 'the conversion made no item of it'
    await deadLetter.semaphore.acquire(this.#signal)
    try {
      const result = await retry(
        () =>
          raceAbort(
            deadLetter.connection!.write(deadLetter.stream, batch, { signal: this.#signal }),
            this.#signal,
          ),
        this.#retryOptions(deadLetter.node.id, 'write'),
      )
      deadLetter.stats.items += result.written
      for (const failure of result.failed) {
        deadLetter.stats.failed++
        this.#emit({
          type: 'item_failed',
          nodeId: deadLetter.node.id,
          index: failure.index,
          item: describeItem(batch[failure.index]!),
          error: failure.error.toJSON(),
        })
      }
      return result.failed.length === 0 ? undefined : result.failed[0]!.error.message
    } catch (error) {
      if (this.#signal.aborted) throw error
      const failure = toProviderError(error)
      this.#logger.warn(
        { nodeId: deadLetter.node.id, err: failure.toJSON() },
        'dead-letter write failed',
      )
      return failure.message
    } finally {
      deadLetter.semaphore.release()
    }
  }

  #onCommit(source: SourceRuntime, items: number): void {
    source.sinceSave += items
    const everyItems = this.#pipeline.options?.checkpointEveryItems ?? DEFAULTS.checkpointEveryItems
    const everyMs =
      (this.#pipeline.options?.checkpointEverySeconds ?? DEFAULTS.checkpointEverySeconds) * 1000
    if (source.sinceSave >= everyItems || Date.now() - source.lastSaveAt >= everyMs)
      this.#saveCheckpoint(source)
  }

  #checkpointByTime(): void {
    const everyMs =
      (this.#pipeline.options?.checkpointEverySeconds ?? DEFAULTS.checkpointEverySeconds) * 1000
    for (const source of this.#sources) {
      if (source.sinceSave > 0 && Date.now() - source.lastSaveAt >= everyMs)
        this.#saveCheckpoint(source)
    }
  }

  /** Start a save of the committed context (one at a time per source; a request during a save queues one more). */
  #saveCheckpoint(source: SourceRuntime): void {
    if (source.saving) {
      source.saveAgain = true
      return
    }
    source.saving = (async () => {
      try {
        do {
          source.saveAgain = false
          const committed = source.tracker.committed
          if (!committed || (source.saved && source.saved.seq >= committed.seq)) continue
          source.sinceSave = 0
          source.lastSaveAt = Date.now()
          await retry(
            () =>
              this.#options.checkpoints.save(
                this.#pipeline.id,
                source.node.id,
                committed.context,
                this.#options.runId,
              ),
            { maxAttempts: this.#maxAttempts, baseDelayMs: this.#options.retryBaseDelayMs ?? 200 },
          )
          source.saved = committed
          this.#checkpoints[source.node.id] = committed.context
          this.#emit({ type: 'checkpoint', nodeId: source.node.id, context: committed.context })
        } while (source.saveAgain)
      } catch (error) {
        this.#fail(
          new ProviderError({
            kind: toProviderError(error).kind,
            message: `saving the checkpoint of node ${source.node.id} failed: ${(error as Error).message}`,
            cause: error,
          }),
          true,
        )
      } finally {
        source.saving = undefined
      }
    })()
  }

  async #flushCheckpoint(source: SourceRuntime): Promise<void> {
    while (source.saving) await source.saving
    const committed = source.tracker.committed
    if (!committed || (source.saved && source.saved.seq >= committed.seq)) return
    this.#saveCheckpoint(source)
    while (source.saving) await source.saving
  }
}

/**
 * Whether a record source must describe its stream for this sink: a sink that prepares its
 * destination from it, or a record -> message edge whose message id comes from the primary key.
 */
export function needsSourceSchema(
  sinkKind: DataKind,
  sinkCapabilities: { prepare?: boolean | undefined },
  sinkNode: PipelineNode,
): boolean {
  if (sinkCapabilities.prepare) return true
  return sinkKind === 'message' && !convertOptions(sinkNode.convert)?.key
}

/**
 * The schema of what flows into a sink, for its `prepare`: a record source's described
 * columns on a record -> record edge, or the sink's declared columns (document -> record).
 */
export function sinkSchema(
  sink: { node: PipelineNode; kind: DataKind },
  edges: readonly {
    source: { kind: DataKind; schema?: StreamSchema | undefined }
    sink: unknown
  }[],
): StreamSchema | undefined {
  const declared = declaredSchema(convertOptions(sink.node.convert))
  if (declared && sink.kind === 'record') return declared
  for (const edge of edges) {
    if (edge.sink !== sink) continue
    // Rows become documents field by field, so a record source's columns (and its key) are
    // the documents' too: a document sink keys or indexes its destination by them.
    if (
      edge.source.kind === 'record' &&
      (sink.kind === 'record' || sink.kind === 'document') &&
      edge.source.schema
    )
      return edge.source.schema
  }
  return undefined
}
