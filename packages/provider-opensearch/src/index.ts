export {
  type BulkResponse,
  clientOptions,
  ExactSerializer,
  OpenSearchBackend,
  type SearchBackend,
  type SearchHit,
  type SearchResponse,
} from './opensearch-client.js'
export { checkCluster, OpenSearchConnection, SUPPORTED_MAJORS } from './opensearch-connection.js'
export { classifyOpenSearchError } from './opensearch-errors.js'
export { columnTypeOf, mappingColumns, mappingFields } from './opensearch-mapping.js'
export {
  createOpenSearchProvider,
  type OpenSearchProvider,
  type OpenSearchProviderOptions,
  opensearchProvider,
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
