import type { RunEventBody } from '@nvisy/protocol'
import type { Logger, Provider, SerializedProviderError } from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'

/** The providers a runtime has loaded, by id. */
export interface ProviderRegistry {
  get(id: string): Provider | undefined
  list(): Provider[]
}

/** Where the resume context of each source node is kept between runs. */
export interface CheckpointStore {
  load(pipelineId: string, nodeId: string): Promise<unknown | undefined>
  save(pipelineId: string, nodeId: string, context: unknown, runId: string): Promise<void>
}

export type NodeStats = {
  /** Source: items read. Sink: items written. */
  items: number
  /** Approximate bytes of those items. */
  bytes: number
  /** Items that failed alone (sinks) or could not be converted. */
  failed: number
}

/** A run event as the executor emits it: the protocol's run event without its envelope. */
export type RunEvent =
  | { type: 'started' }
  | { type: 'progress'; nodes: Record<string, NodeStats> }
  | { type: 'checkpoint'; nodeId: string; context: unknown }
  | {
      type: 'item_failed'
      nodeId: string
      index?: number
      item: string
      error: SerializedProviderError
    }
  | { type: 'prepared'; nodeId: string; existed: boolean; actions: string[] }
  | { type: 'completed'; stats: RunStats }
  | { type: 'partial'; stats: RunStats }
  | { type: 'failed'; error: SerializedProviderError }
  | { type: 'cancelled'; reason?: string; checkpoints: Record<string, unknown> }

export type RunStats = {
  nodes: Record<string, NodeStats>
  /** Items a sink refused or a conversion could not make, dead-lettered or not. */
  failedItems: number
  /** Failed items that reached no dead-letter sink: they arrived nowhere (the failure budget counts these). */
  refusedItems: number
  /** Failed items written to a dead-letter sink. */
  deadLettered: number
  durationMs: number
}

/**
 * How a run ended. `completed`: every item arrived, at its sink or at a dead-letter sink.
 * `partial`: the run read everything but `stats.refusedItems` items (within the failure
 * budget) arrived nowhere. `failed`: an error stopped it (or the budget was spent).
 * `cancelled`: its signal stopped it.
 */
export type RunStatus = 'completed' | 'partial' | 'failed' | 'cancelled'

export interface RunSummary {
  status: RunStatus
  stats: RunStats
  error?: SerializedProviderError
  /** The last saved context of each source node. */
  checkpoints: Record<string, unknown>
}

export interface ExecuteOptions {
  runId: string
  pipeline: Pipeline
  registry: ProviderRegistry
  /** Turn a node's connection spec into the provider's input (opens sealed credentials, resolves env references). */
  resolveConnection(node: PipelineNode): Promise<{ credentials: unknown; params: unknown }>
  checkpoints: CheckpointStore
  onEvent(event: RunEvent): void | Promise<void>
  signal: AbortSignal
  /** Start each source after its stored checkpoint. Default true. */
  resume?: boolean
  logger?: Logger
  /** How often a progress event is emitted, ms. Default 1000. */
  progressIntervalMs?: number
  /** First retry backoff ceiling, ms. Default 200 (tests lower it). */
  retryBaseDelayMs?: number
}

// The executor's events are the protocol's run events without the envelope.
type Assert<T extends true> = T
export type RunEventMatchesProtocol = Assert<[RunEvent] extends [RunEventBody] ? true : false>
