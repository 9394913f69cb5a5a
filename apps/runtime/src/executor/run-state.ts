import {
  type Data,
  type DataKind,
  type GuardedConnection,
  isAbortError,
  type Logger,
  type Provider,
  type ProviderError,
  type SerializedProviderError,
  type StreamSchema,
  silentLogger,
  toProviderError,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import type { AckTracker, PartCounter } from './ack-tracker.js'
import type { Converter } from './convert.js'
import { DEFAULTS } from './defaults.js'
import type { BoundedQueue } from './queue.js'
import type { Semaphore } from './semaphore.js'
import type { ExecuteOptions, NodeStats, RunEvent, RunStats } from './types.js'

export interface Item {
  seq: number
  data: Data
  /** Bytes for batching and progress, computed once per item (see `sizeOf`). */
  size: number
  /** One of several items a conversion made of source item `seq` (acknowledged through `PartCounter`). */
  part: boolean
  /** The source item's resume context (committed with the batch on an edge with offsets). */
  context: unknown
}

export interface NodeRuntime {
  node: PipelineNode
  provider: Provider
  stream: unknown
  kind: DataKind
  connection?: GuardedConnection
  stats: NodeStats
}

export interface SinkRuntime extends NodeRuntime {
  semaphore: Semaphore
  deadLetter?: SinkRuntime
}

export interface EdgeRuntime {
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
  /** Pass-through: rows travel in this wire format as the source read them (decided after prepare). */
  wire: string | undefined
  /** Where this edge waited, ms: the source on a full item queue (the sink was slower), the writers on an empty batch queue (the source was slower). */
  waits: { sourceMs: number; sinkMs: number }
}

export interface SourceRuntime extends NodeRuntime {
  edges: EdgeRuntime[]
  /** The stream's columns (`describeStream`), when a sink or a conversion needs them. */
  schema: StreamSchema | undefined
  tracker: AckTracker
  /** Pass-through: the source reads its rows as wire text for its one edge (`EdgeRuntime.wire`). */
  wire: WireReadOptions | undefined
  after: unknown
  saved: { context: unknown; seq: number } | undefined
  lastSaveAt: number
  sinceSave: number
  /** Items read (a batch item counts once; `stats.items` counts its rows). */
  itemsRead: number
  saving: Promise<void> | undefined
  saveAgain: boolean
}

export function serialize(error: unknown): SerializedProviderError {
  return toProviderError(error).toJSON()
}

/**
 * What one run shares between its parts (setup, reading, writing, failure routing,
 * checkpoints): its options, the node/edge graph, the counters, the run's signal, and how
 * to report an event or stop the run.
 */
export class RunState {
  readonly options: ExecuteOptions
  readonly pipeline: Pipeline
  readonly logger: Logger
  readonly controller = new AbortController()
  readonly startedAt = Date.now()
  failure: ProviderError | undefined
  failedItems = 0
  refusedItems = 0
  deadLettered = 0
  events: Promise<void> = Promise.resolve()
  readonly nodes = new Map<string, NodeRuntime>()
  readonly sources: SourceRuntime[] = []
  readonly sinks = new Map<string, SinkRuntime>()
  readonly edges: EdgeRuntime[] = []
  /** The last saved (or stored, on resume) context of each source, for the summary. */
  readonly checkpoints: Record<string, unknown> = {}
  readonly maxAttempts: number
  /** Refused items allowed: 0 unless the pipeline sets one, null for unlimited. */
  readonly failureBudget: number | null

  constructor(options: ExecuteOptions) {
    this.options = options
    this.pipeline = options.pipeline
    this.logger =
      (options.logger ?? silentLogger).child?.({
        runId: options.runId,
        pipelineId: options.pipeline.id,
      }) ??
      options.logger ??
      silentLogger
    this.maxAttempts = options.pipeline.options?.maxAttempts ?? DEFAULTS.maxAttempts
    // Absent: no refused item is allowed (errors.tolerance=none); null: unlimited.
    const budget = options.pipeline.options?.failureBudget
    this.failureBudget = budget === undefined ? 0 : budget
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  emit(event: RunEvent): void {
    this.events = this.events
      .then(() => this.options.onEvent(event))
      .catch((error) =>
        this.logger.warn({ err: serialize(error), event: event.type }, 'run event handler failed'),
      )
  }

  /** Record the run's failure and stop everything. Errors that follow a stop are its echoes and ignored, unless `force`. */
  fail(error: unknown, force = false): void {
    if (this.failure) return
    if (this.signal.aborted && !force) {
      if (!isAbortError(error) && error !== this.signal.reason) {
        this.logger.debug({ err: serialize(error) }, 'error after the run stopped')
      }
      return
    }
    this.failure = toProviderError(error)
    this.logger.error({ err: this.failure.toJSON() }, 'run failed')
    this.controller.abort(this.failure)
  }

  stats(): RunStats {
    const nodes: Record<string, NodeStats> = {}
    for (const [id, runtime] of this.nodes) nodes[id] = { ...runtime.stats }
    return {
      nodes,
      failedItems: this.failedItems,
      refusedItems: this.refusedItems,
      deadLettered: this.deadLettered,
      durationMs: Date.now() - this.startedAt,
    }
  }

  /** `retry` options for one node's operation: the run's attempts, signal and backoff, each retry logged. */
  retryOptions(nodeId: string, operation: string) {
    return {
      maxAttempts: this.maxAttempts,
      signal: this.signal,
      baseDelayMs: this.options.retryBaseDelayMs ?? 200,
      onRetry: ({
        attempt,
        delayMs,
        error,
      }: {
        attempt: number
        delayMs: number
        error: ProviderError
      }) =>
        this.logger.warn(
          { nodeId, operation, attempt, delayMs, err: error.toJSON() },
          `${operation} failed, retrying`,
        ),
    }
  }
}
