export { FileCheckpointStore } from './checkpoints/file-checkpoint-store.js'
export {
  MemoryCheckpointStore,
  type StoredCheckpoint,
} from './checkpoints/memory-checkpoint-store.js'
export {
  type EnvReference,
  isEnvReference,
  localConnectionResolver,
  resolveEnvReferences,
} from './connections.js'
export {
  type CheckpointStore,
  conversionAllowed,
  DEFAULTS as EXECUTOR_DEFAULTS,
  type ExecuteOptions,
  executePartitioned,
  executePipeline,
  listConversions,
  type NodeStats,
  nodeDataKind,
  type PartitionedRunEvent,
  type PartitionedRunOptions,
  type PartitionedRunSummary,
  type PartitionSummary,
  type ProviderRegistry,
  type RunEvent,
  type RunStats,
  type RunSummary,
  validatePipeline,
} from './executor/index.js'
export {
  CONFIG_FILE_NAME,
  type LoadOptions,
  loadProviders,
  providerFromModule,
  providerPackages,
  type RuntimeConfig,
  readRuntimeConfig,
  resolvePackageEntry,
} from './loader.js'
export { createLogger } from './logger.js'
export { type CliIo, EXIT, main } from './main.js'
export * from './nats/index.js'
export type { ConnectionSpec, Pipeline, PipelineNode } from './pipeline-types.js'
export { MapProviderRegistry } from './registry.js'
export { VERSION } from './version.js'
