export { AckTracker, PartCounter } from './ack-tracker.js'
export {
  type ConversionFailure,
  type ConvertFormat,
  conversionAllowed,
  converterFor,
  listConversions,
} from './convert.js'
export { DEFAULTS, executePipeline } from './execute.js'
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
