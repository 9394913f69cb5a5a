import { type Static, type TSchema, Type } from '@nvisy/provider-core'
import { RunIdSchema, SerializedErrorSchema } from './messages.js'
import { NodeIdSchema, PipelineIdSchema } from './pipeline.js'

type TProperties = Record<string, TSchema>

export const RUN_EVENT_TYPES = [
  'started',
  'progress',
  'checkpoint',
  'item_failed',
  'completed',
  'failed',
  'cancelled',
] as const
export type RunEventType = (typeof RUN_EVENT_TYPES)[number]

const envelope = {
  runId: RunIdSchema,
  pipelineId: PipelineIdSchema,
  at: Type.String({ format: 'date-time' }),
  seq: Type.Integer({ minimum: 0, description: 'the event number within the run, from 0' }),
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
export const RunProgressEventSchema = eventSchema('progress', { nodes: NodeStatsMap })
export const RunCheckpointEventSchema = eventSchema('checkpoint', {
  nodeId: NodeIdSchema,
  context: Type.Unknown({ description: 'the resume context saved for this source node' }),
})
export const RunItemFailedEventSchema = eventSchema('item_failed', {
  nodeId: NodeIdSchema,
  index: Type.Optional(Type.Integer({ minimum: 0 })),
  item: Type.String({
    maxLength: 4096,
    description: 'a short description of the item, never its content',
  }),
  error: SerializedErrorSchema,
})
export const RunCompletedEventSchema = eventSchema('completed', {
  stats: Type.Unsafe<Record<string, unknown>>({ type: 'object' }),
})
export const RunFailedEventSchema = eventSchema('failed', { error: SerializedErrorSchema })
export const RunCancelledEventSchema = eventSchema('cancelled', {
  reason: Type.Optional(Type.String()),
  checkpoints: Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    propertyNames: { pattern: NodeIdSchema.pattern },
    description: 'the last saved context of each source node',
  }),
})

/** One schema per event type, for validating an event of a known type. */
export const runEventSchemas = {
  started: RunStartedEventSchema,
  progress: RunProgressEventSchema,
  checkpoint: RunCheckpointEventSchema,
  item_failed: RunItemFailedEventSchema,
  completed: RunCompletedEventSchema,
  failed: RunFailedEventSchema,
  cancelled: RunCancelledEventSchema,
} as const satisfies Record<RunEventType, TSchema>

/** A run event: published on `nvisy.runtime.v1.events.<runId>`, discriminated by `type`. */
export const RunEventSchema = Type.Union([
  RunStartedEventSchema,
  RunProgressEventSchema,
  RunCheckpointEventSchema,
  RunItemFailedEventSchema,
  RunCompletedEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
])

export type RunStartedEvent = Static<typeof RunStartedEventSchema>
export type RunProgressEvent = Static<typeof RunProgressEventSchema>
export type RunCheckpointEvent = Static<typeof RunCheckpointEventSchema>
export type RunItemFailedEvent = Static<typeof RunItemFailedEventSchema>
export type RunCompletedEvent = Static<typeof RunCompletedEventSchema>
export type RunFailedEvent = Static<typeof RunFailedEventSchema>
export type RunCancelledEvent = Static<typeof RunCancelledEventSchema>
export type RunEvent =
  | RunStartedEvent
  | RunProgressEvent
  | RunCheckpointEvent
  | RunItemFailedEvent
  | RunCompletedEvent
  | RunFailedEvent
  | RunCancelledEvent

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
/** A run event without its envelope: what the executor emits, before runId, at and seq are added. */
export type RunEventBody = DistributiveOmit<RunEvent, 'runId' | 'pipelineId' | 'at' | 'seq'>
