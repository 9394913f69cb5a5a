import { type Static, Type } from '@nvisy/provider-core'
import { PartitionStatusSchema, RunStatsSchema } from './events.js'
import { RunIdSchema, SerializedErrorSchema } from './messages.js'
import { JsonObject, NodeIdSchema, PipelineIdSchema, PipelineSchema } from './pipeline.js'

// Partitioned runs across the queue group (runs.start with `partitions`): the instance that
// receives the request plans the partitions, records the run in a KV bucket and puts one work
// item per partition on a JetStream work-queue stream; every instance takes items, runs each
// partition with its own checkpoint, and acknowledges the item only when the partition ended.

/** The JetStream work-queue stream that holds one work item per partition still to run. */
export const PARTITION_WORK_STREAM = 'NVISY_PARTITION_WORK'
/** The durable pull consumer every instance of the queue group takes work items from. */
export const PARTITION_WORK_CONSUMER = 'nvisy-partition-workers'
/** The KV bucket of partitioned runs: `<runId>` (the run) and `<runId>.<index>` (how each partition ended). */
export const PARTITIONED_RUNS_BUCKET = 'nvisy-partitioned-runs'
/** The partition count `partitions: "auto"` asks the source for (it may return fewer). */
export const AUTO_PARTITIONS = 16
/** The largest partition count (provider-core `MAX_PARTITIONS`). */
export const MAX_RUN_PARTITIONS = 1024

const strict = { additionalProperties: false } as const
const open = { additionalProperties: true } as const

export const PlanIdSchema = Type.String({
  pattern: '^[0-9a-f]{8}$',
  description: 'the id of a partition plan (8 hex digits): part of each partition pipeline id',
})

/**
 * One partition to run, on the work-queue stream (subject `<prefix>.partitions.work`). The
 * pipeline's connections carry no credentials: `grants` holds, per node, the credentials the
 * planning instance opened, sealed with the runtime key to the runtime key (every instance of
 * the group shares the seed), bound to this run and node, its provider and destination params.
 */
export const PartitionWorkItemSchema = Type.Object(
  {
    v: Type.Literal(1),
    runId: RunIdSchema,
    pipeline: PipelineSchema,
    planId: PlanIdSchema,
    index: Type.Integer({ minimum: 0, maximum: MAX_RUN_PARTITIONS - 1 }),
    count: Type.Integer({ minimum: 1, maximum: MAX_RUN_PARTITIONS }),
    sourceNodeId: NodeIdSchema,
    stream: JsonObject({
      description: "the partition's stream settings, as the source planned them",
    }),
    grants: Type.Unsafe<Record<string, string>>({
      type: 'object',
      propertyNames: { pattern: NodeIdSchema.pattern },
      additionalProperties: { type: 'string', minLength: 1, maxLength: 65_536 },
      maxProperties: 256,
      description:
        "per node id: the node's credentials sealed by the runtime key to itself (v2 plaintext, operation run)",
    }),
  },
  strict,
)
export type PartitionWorkItem = Static<typeof PartitionWorkItemSchema>

/** A partitioned run, under key `<runId>` of the partitioned-runs bucket. */
export const PartitionedRunRecordSchema = Type.Object(
  {
    v: Type.Literal(1),
    runId: RunIdSchema,
    pipelineId: PipelineIdSchema,
    planId: PlanIdSchema,
    sourceNodeId: NodeIdSchema,
    count: Type.Integer({ minimum: 1, maximum: MAX_RUN_PARTITIONS }),
    requested: Type.Integer({ minimum: 1, maximum: MAX_RUN_PARTITIONS }),
    reason: Type.Optional(Type.String({ description: 'why fewer partitions than asked for' })),
    resumed: Type.Boolean({ description: 'the plan is a stored one, resumed' }),
    pending: Type.Array(Type.Integer({ minimum: 0 }), {
      description: 'the partitions this run reads (a resumed plan skips the completed ones)',
    }),
    preparer: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description:
        'the partition that prepares the sinks before the others start (null: nothing to prepare)',
    }),
    prepared: Type.Boolean(),
    state: Type.Union([Type.Literal('running'), Type.Literal('stopping'), Type.Literal('ended')]),
    stop: Type.Optional(
      Type.Object(
        {
          reason: Type.Union([Type.Literal('cancelled'), Type.Literal('failed')]),
          message: Type.String(),
          error: Type.Optional(SerializedErrorSchema),
        },
        open,
      ),
    ),
    outcome: Type.Optional(PartitionStatusSchema),
    failureBudget: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    plannedBy: Type.String({ minLength: 1 }),
    startedAt: Type.String({ format: 'date-time' }),
    endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  open,
)
export type PartitionedRunRecord = Static<typeof PartitionedRunRecordSchema>

/** How one partition ended, under key `<runId>.<index>` of the partitioned-runs bucket. */
export const PartitionRecordSchema = Type.Object(
  {
    v: Type.Literal(1),
    index: Type.Integer({ minimum: 0 }),
    status: PartitionStatusSchema,
    instanceId: Type.String({ minLength: 1 }),
    stats: Type.Optional(RunStatsSchema),
    error: Type.Optional(SerializedErrorSchema),
    checkpoint: Type.Optional(Type.Unknown({ description: "the partition's last saved context" })),
    endedAt: Type.String({ format: 'date-time' }),
  },
  open,
)
export type PartitionRecord = Static<typeof PartitionRecordSchema>

/** The key of a partition's record in the partitioned-runs bucket. */
export function partitionRecordKey(runId: string, index: number): string {
  return `${runId}.${index}`
}
