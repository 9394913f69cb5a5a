import { type Static, type TSchema, Type } from '@nvisy/provider-core'
import { RunIdSchema, SerializedErrorSchema } from './messages.js'
import { NodeIdSchema, PipelineIdSchema } from './pipeline.js'

type TProperties = Record<string, TSchema>

export const RUN_EVENT_TYPES = [
  'started',
  'progress',
  'checkpoint',
  'item_failed',
  'prepared',
  'completed',
  'partial',
  'failed',
  'cancelled',
  'partition_ended',
] as const
export type RunEventType = (typeof RUN_EVENT_TYPES)[number]

/** The largest partition count of a partitioned run (provider-core `MAX_PARTITIONS`). */
const MAX_PARTITIONS = 1024

/** Which partition of how many: on every event one partition of a partitioned run publishes. */
export const PartitionLabelSchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, maximum: MAX_PARTITIONS - 1 }),
    count: Type.Integer({ minimum: 1, maximum: MAX_PARTITIONS }),
    instanceId: Type.Optional(
      Type.String({ minLength: 1, description: 'the runtime instance running the partition' }),
    ),
  },
  { additionalProperties: true },
)
export type PartitionLabel = Static<typeof PartitionLabelSchema>

/** How a run or one partition of it ended. */
export const PartitionStatusSchema = Type.Union([
  Type.Literal('completed'),
  Type.Literal('partial'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
])
export type PartitionStatus = Static<typeof PartitionStatusSchema>

const envelope = {
  runId: RunIdSchema,
  pipelineId: PipelineIdSchema,
  at: Type.String({ format: 'date-time' }),
  seq: Type.Integer({
    minimum: 0,
    description:
      'the event number within the run, from 0; in a partitioned run, within what one instance published for the run or one delivery of a partition (order by the stream sequence)',
  }),
  /** Set on the events of one partition of a partitioned run; absent on the run's own events. */
}

/** Set on the events of one partition of a partitioned run; absent on the run's own events. */
const partitionField = {
  partition: Type.Optional(
    Type.Unsafe<PartitionLabel>({
      ...PartitionLabelSchema,
      description:
        'which partition of a partitioned run published this event; absent on the run-level events',
    }),
  ),
}

function eventSchema<K extends RunEventType, P extends TProperties>(type: K, properties: P) {
  return Type.Object(
    { type: Type.Literal(type), ...envelope, ...properties },
    { additionalProperties: true },
  )
}

export const NodeStatsSchema = Type.Object(
  {
    items: Type.Integer({ minimum: 0 }),
    bytes: Type.Integer({ minimum: 0 }),
    failed: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: true },
)

const NodeStatsMap = Type.Unsafe<Record<string, Static<typeof NodeStatsSchema>>>({
  type: 'object',
  propertyNames: { pattern: NodeIdSchema.pattern },
  additionalProperties: NodeStatsSchema,
})

export const RunStartedEventSchema = eventSchema('started', {})
export const RunProgressEventSchema = eventSchema('progress', {
  nodes: NodeStatsMap,
  ...partitionField,
})
export const RunCheckpointEventSchema = eventSchema('checkpoint', {
  ...partitionField,
  nodeId: NodeIdSchema,
  context: Type.Unknown({ description: 'the resume context saved for this source node' }),
})
export const RunItemFailedEventSchema = eventSchema('item_failed', {
  ...partitionField,
  nodeId: NodeIdSchema,
  index: Type.Optional(Type.Integer({ minimum: 0 })),
  item: Type.String({
    maxLength: 4096,
    description: 'a short description of the item, never its content',
  }),
  error: SerializedErrorSchema,
})
export const RunPreparedEventSchema = eventSchema('prepared', {
  ...partitionField,
  nodeId: NodeIdSchema,
  existed: Type.Boolean({ description: 'whether the destination existed before the run' }),
  actions: Type.Array(Type.String({ maxLength: 65_536 }), {
    maxItems: 1024,
    description: 'statements the sink ran to create or evolve its destination (DDL), in order',
  }),
})

/** A run's counts: what `completed`, `partial` and the CLI summary report. */
export const RunStatsSchema = Type.Object(
  {
    nodes: NodeStatsMap,
    failedItems: Type.Integer({
      minimum: 0,
      description: 'items that a sink refused or a conversion could not make, dead-lettered or not',
    }),
    refusedItems: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'failed items that did not reach a dead-letter sink (the failure budget counts these)',
      }),
    ),
    deadLettered: Type.Optional(
      Type.Integer({ minimum: 0, description: 'failed items written to a dead-letter sink' }),
    ),
    durationMs: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: true },
)

/** Every item arrived: at its sink, or (after a failure) at a dead-letter sink. */
export const RunCompletedEventSchema = eventSchema('completed', { stats: RunStatsSchema })
/** The run ended within its failure budget but `stats.refusedItems` items arrived nowhere. */
export const RunPartialEventSchema = eventSchema('partial', { stats: RunStatsSchema })
export const RunFailedEventSchema = eventSchema('failed', { error: SerializedErrorSchema })
export const RunCancelledEventSchema = eventSchema('cancelled', {
  reason: Type.Optional(Type.String()),
  checkpoints: Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    propertyNames: { pattern: NodeIdSchema.pattern },
    description: 'the last saved context of each source node',
  }),
})

/**
 * One partition of a partitioned run ended (its `partition` label says which): how, where, with
 * what counts. The run's own `completed`, `partial`, `failed` or `cancelled` follows once every
 * partition has ended.
 */
export const RunPartitionEndedEventSchema = eventSchema('partition_ended', {
  partition: PartitionLabelSchema,
  status: PartitionStatusSchema,
  instanceId: Type.String({ minLength: 1, description: 'the runtime instance that ran it' }),
  stats: Type.Optional(RunStatsSchema),
  error: Type.Optional(SerializedErrorSchema),
  checkpoint: Type.Optional(Type.Unknown({ description: "the partition's last saved context" })),
})

/** One schema per event type, for validating an event of a known type. */
export const runEventSchemas = {
  started: RunStartedEventSchema,
  progress: RunProgressEventSchema,
  checkpoint: RunCheckpointEventSchema,
  item_failed: RunItemFailedEventSchema,
  prepared: RunPreparedEventSchema,
  completed: RunCompletedEventSchema,
  partial: RunPartialEventSchema,
  failed: RunFailedEventSchema,
  cancelled: RunCancelledEventSchema,
  partition_ended: RunPartitionEndedEventSchema,
} as const satisfies Record<RunEventType, TSchema>

/** A run event: published on `nvisy.runtime.v1.events.<runId>`, discriminated by `type`. */
export const RunEventSchema = Type.Union([
  RunStartedEventSchema,
  RunProgressEventSchema,
  RunCheckpointEventSchema,
  RunItemFailedEventSchema,
  RunPreparedEventSchema,
  RunCompletedEventSchema,
  RunPartialEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
  RunPartitionEndedEventSchema,
])

export type RunStartedEvent = Static<typeof RunStartedEventSchema>
export type RunProgressEvent = Static<typeof RunProgressEventSchema>
export type RunCheckpointEvent = Static<typeof RunCheckpointEventSchema>
export type RunItemFailedEvent = Static<typeof RunItemFailedEventSchema>
export type RunPreparedEvent = Static<typeof RunPreparedEventSchema>
export type RunCompletedEvent = Static<typeof RunCompletedEventSchema>
export type RunPartialEvent = Static<typeof RunPartialEventSchema>
export type RunStats = Static<typeof RunStatsSchema>
export type RunFailedEvent = Static<typeof RunFailedEventSchema>
export type RunCancelledEvent = Static<typeof RunCancelledEventSchema>
export type RunPartitionEndedEvent = Static<typeof RunPartitionEndedEventSchema>
export type RunEvent =
  | RunStartedEvent
  | RunProgressEvent
  | RunCheckpointEvent
  | RunItemFailedEvent
  | RunPreparedEvent
  | RunCompletedEvent
  | RunPartialEvent
  | RunFailedEvent
  | RunCancelledEvent
  | RunPartitionEndedEvent

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
/** A run event without its envelope: what the executor emits, before runId, at and seq are added. */
export type RunEventBody = DistributiveOmit<RunEvent, 'runId' | 'pipelineId' | 'at' | 'seq'>
