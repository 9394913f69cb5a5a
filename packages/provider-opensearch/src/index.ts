export {
  type BulkResponse,
  clientOptions,
  ExactSerializer,
  OpenSearchBackend,
  type SearchBackend,
  type SearchHit,
  type SearchResponse,
} from './opensearch-client.js'
export { classifyOpenSearchError } from './opensearch-errors.js'
export {
  checkCluster,
  columnTypeOf,
  createOpenSearchProvider,
  mappingColumns,
  mappingFields,
  type OpenSearchConnection,
  type OpenSearchProvider,
  type OpenSearchProviderOptions,
  opensearchProvider,
  SUPPORTED_MAJORS,
} from './opensearch-provider.js'
export {
  type OpenSearchContext,
  OpenSearchContextSchema,
  type OpenSearchCredentials,
  OpenSearchCredentialsSchema,
  type OpenSearchParams,
  OpenSearchParamsSchema,
  type OpenSearchSinkStream,
  OpenSearchSinkStreamSchema,
  type OpenSearchStream,
  OpenSearchStreamSchema,
} from './opensearch-schemas.js'
export { chunkEntries, mappingForSchema, mappingOf, toSource } from './opensearch-sink.js'
export { hitToData } from './opensearch-source.js'
export { VERSION } from './version.js'
