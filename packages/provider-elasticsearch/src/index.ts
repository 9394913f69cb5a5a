export {
  type BulkResponse,
  clientOptions,
  ElasticsearchBackend,
  ExactSerializer,
  type SearchBackend,
  type SearchHit,
  type SearchResponse,
} from './elasticsearch-client.js'
export {
  checkCluster,
  ElasticsearchConnection,
  SUPPORTED_MAJORS,
} from './elasticsearch-connection.js'
export { classifyElasticsearchError } from './elasticsearch-errors.js'
export { columnTypeOf, mappingColumns, mappingFields } from './elasticsearch-mapping.js'
export {
  createElasticsearchProvider,
  type ElasticsearchProvider,
  type ElasticsearchProviderOptions,
  elasticsearchProvider,
} from './elasticsearch-provider.js'
export {
  type ElasticsearchContext,
  ElasticsearchContextSchema,
  type ElasticsearchCredentials,
  ElasticsearchCredentialsSchema,
  type ElasticsearchParams,
  ElasticsearchParamsSchema,
  type ElasticsearchSinkStream,
  ElasticsearchSinkStreamSchema,
  type ElasticsearchStream,
  ElasticsearchStreamSchema,
} from './elasticsearch-schemas.js'
export { chunkEntries, mappingForSchema, mappingOf, toSource } from './elasticsearch-sink.js'
export { hitToData } from './elasticsearch-source.js'
export { VERSION } from './version.js'
