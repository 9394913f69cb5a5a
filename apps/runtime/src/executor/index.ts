export { AckTracker, PartCounter } from './ack-tracker.js'
export { type CheckPipelineOptions, checkPipeline } from './check.js'
export {
  type ConversionFailure,
  type ConvertFormat,
  type ConvertSetting,
  conversionAllowed,
  converterFor,
  declaredSchema,
  listConversions,
} from './convert.js'
export { DEFAULTS, executePipeline, sinkSchema } from './execute.js'
export {
  executePartitioned,
  type PartitionedRunEvent,
  type PartitionedRunOptions,
  type PartitionedRunSummary,
  type PartitionLabel,
  type PartitionSummary,
  partitionPipelineId,
  planKey,
} from './partitioned.js'
export { BoundedQueue } from './queue.js'
export type {
  CheckpointStore,
  ExecuteOptions,
  NodeStats,
  ProviderRegistry,
  RunEvent,
  RunStats,
  RunStatus,
  RunSummary,
} from './types.js'
export { nodeDataKind, validatePipeline } from './validate.js'
