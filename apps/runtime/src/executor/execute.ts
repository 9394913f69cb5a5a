import {
  approximateSize,
  type ByteSource,
  backoffDelay,
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
  silentLogger,
  sleep,
  toProviderError,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import { AckTracker, PartCounter } from './ack-tracker.js'
import { type Converter, convertAll, converterFor, isConversionFailure } from './convert.js'
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
}

interface SourceRuntime extends NodeRuntime {
  edges: EdgeRuntime[]
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
    this.#failureBudget = options.pipeline.options?.failureBudget ?? null
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
    return { nodes, failedItems: this.#failedItems, durationMs: Date.now() - this.#startedAt }
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
        converter: converterFor(source.kind, sink.kind, sink.node.convert)!,
        items: new BoundedQueue(DEFAULTS.itemBuffer),
        batches: new BoundedQueue(queueCapacity),
        parts: new PartCounter((seq) => source.tracker.ack(seq)),
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
    await Promise.all(
      [...this.#nodes.values()].map(async (runtime) => {
        const input = await this.#options.resolveConnection(runtime.node)
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
          await edge.items.push({ seq, data: converted, size: sizeOf(converted), part: true })
        }
        edge.parts.seal(seq)
      }
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
      let bytes = first.size
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
          if (bytes + item.size > maxBytes) {
            carry = item
            break
          }
          batch.push(item)
          bytes += item.size
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
        const result = await retry(
          () =>
            raceAbort(connection.write(sink.stream, data, { signal: this.#signal }), this.#signal),
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

  /** Report one item that failed alone, send it to the dead-letter sink, and spend the failure budget. */
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
    if (this.#failureBudget !== null && this.#failedItems > this.#failureBudget) {
      throw new ProviderError({
        kind: 'data',
        message: `failure budget spent: ${this.#failedItems} item failures, the pipeline allows ${this.#failureBudget} (last: ${described} at node ${sink.node.id}: ${error.message})`,
      })
    }
    const deadLetter = sink.deadLetter
    if (!deadLetter) return
    const converter = converterFor(data.kind, deadLetter.kind, deadLetter.node.convert)
    if (!converter) return
    const batch: Data[] = []
    for await (const converted of convertAll(converter, data, undefined))
      if (!isConversionFailure(converted)) batch.push(converted)
    if (batch.length === 0) return
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
