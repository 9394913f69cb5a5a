export { type Static, type TSchema, Type } from '@sinclair/typebox'
export { abortReason, raceAbort, type SleepOptions, sleep, throwIfAborted } from './abort.js'
export {
  type BatchLimits,
  type BatchOptions,
  batchStream,
  chunkBy,
  mapConcurrent,
} from './batcher.js'
export type { ColumnInfo, ColumnType, PrepareResult, StreamSchema } from './columns.js'
export { wireFormats } from './connection-guard.js'
export {
  type Capabilities,
  type ConnectContext,
  type ConnectInput,
  type Connection,
  type GuardedConnection,
  MAX_PARTITIONS,
  type PartitionOptions,
  type PartitionPlan,
  type PrepareOptions,
  type Provider,
  type ProviderDefinition,
  type ProviderDescription,
  type ReadItem,
  type ReadOptions,
  type SinkDefinition,
  type SourceDefinition,
  SPECIFICATION_VERSION,
  type SpecificationVersion,
  type StreamInfo,
  type WireAnswer,
  type WireOffer,
  type WireReadOptions,
  type WriteFailure,
  type WriteOptions,
  type WriteResult,
} from './contract.js'
export * from './data.js'
export { defineProvider } from './define-provider.js'
export {
  ERROR_KINDS,
  type ErrorKind,
  errorMessage,
  isAbortError,
  isProviderError,
  isRetryableKind,
  isTransientNetworkError,
  type Operation,
  ProviderError,
  type ProviderErrorOptions,
  type SerializedProviderError,
  toProviderError,
  type ValidationIssue,
} from './errors.js'
export { ItemRows } from './item-rows.js'
export { exactNumberFields, jsonNumberParsesExactly } from './json-numbers.js'
export { type KeyRange, partitionPlan, quantileBounds, splitAtBounds } from './key-ranges.js'
export { type Logger, memoryLogger, redactingLogger, silentLogger } from './logger.js'
export {
  allowObjectBodyListeners,
  compareObjectKeys,
  laterObjectKey,
  MAX_PARTITION_KEYS,
  OBJECT_BODY_LISTENERS,
  type ObjectKeyRange,
  ObjectKeyRangeSchema,
  type ObjectListing,
  type ObjectListingStream,
  objectChangedError,
  objectKeyRangeProblem,
  objectListing,
  partitionObjectKeys,
} from './object-store.js'
export {
  type ColumnPusher,
  type ColumnShape,
  columnBatches,
  itemsFromPages,
  type Page,
} from './paged-items.js'
export {
  canonicalJson,
  Destination,
  declaresDestinations,
  destinationDigest,
  destinationParams,
  isDestinationSchema,
  isLocalPathSchema,
  LocalPath,
  localPathParams,
} from './param-marks.js'
export { collectMarked, collectSecrets, REDACTED, Redactor, redactObject } from './redact.js'
export { backoffDelay, type RetryOptions, retry } from './retry.js'
export {
  checkValue,
  compileSchema,
  EmptyObject,
  formatIssues,
  isSecretSchema,
  Secret,
  toIssues,
  validateValue,
} from './schema.js'
export { checkSearchHealth, type SearchHealthBackend } from './search-cluster.js'
export {
  type ExactNumber,
  exactNumberValue,
  HIT_RAW_JSON,
  isExactNumber,
  keepExactHitNumbers,
  stringifyExact,
} from './search-hits.js'
export {
  MAX_DISCOVERED_SEARCH_STREAMS,
  type SearchMappings,
  searchColumnTypeOf,
  searchIndexSchema,
  searchMappingColumns,
  searchMappingFields,
  searchStreamsOf,
} from './search-mapping.js'
export {
  readSearchIndex,
  type SearchReadBackend,
  type SearchReadContext,
  type SearchReadHit,
  type SearchReadResponse,
  type SearchReadStream,
  searchHitToData,
} from './search-read.js'
export { type BlobOrigin, type CopyEnd, canCopyServerSide } from './server-side-copy.js'
export {
  type TlsConnectOptions,
  type TlsMode,
  TlsSchema,
  type TlsSettings,
  tlsConnectOptions,
} from './tls.js'
export { VERSION } from './version.js'
export { itemDataError, writeEachConcurrently } from './write-each.js'
