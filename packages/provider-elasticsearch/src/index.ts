export {
  type BulkResponse,
  clientOptions,
  ElasticsearchBackend,
  ExactSerializer,
  type SearchBackend,
  type SearchHit,
  type SearchResponse,
} from './elasticsearch-client.js'
export { classifyElasticsearchError } from './elasticsearch-errors.js'
export {
  checkCluster,
  columnTypeOf,
  createElasticsearchProvider,
  type ElasticsearchConnection,
  type ElasticsearchProvider,
  type ElasticsearchProviderOptions,
  elasticsearchProvider,
  mappingColumns,
  mappingFields,
  SUPPORTED_MAJORS,
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
