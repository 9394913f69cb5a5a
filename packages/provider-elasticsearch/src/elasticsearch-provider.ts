import type { Client } from '@elastic/elasticsearch'
import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { ElasticsearchConnection } from './elasticsearch-connection.js'
import { classifyElasticsearchError } from './elasticsearch-errors.js'
import {
  ElasticsearchContextSchema,
  ElasticsearchCredentialsSchema,
  ElasticsearchParamsSchema,
  ElasticsearchSinkStreamSchema,
  ElasticsearchStreamSchema,
} from './elasticsearch-schemas.js'
import { VERSION } from './version.js'

export interface ElasticsearchProviderOptions {
  /** A client to use instead of one built from params and credentials; `close()` leaves it open. */
  client?: Client
}

/** Create the Elasticsearch provider. */
export function createElasticsearchProvider(options: ElasticsearchProviderOptions = {}) {
  return defineProvider({
    id: 'elasticsearch',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Elasticsearch',
    description:
      'Elasticsearch 8.x/9.x indices and data streams: read in a point in time with search_after as documents or embeddings (dense_vector), written with _bulk by _id',
    credentials: ElasticsearchCredentialsSchema,
    params: ElasticsearchParamsSchema,
    source: {
      data: ['document', 'embedding'],
      stream: ElasticsearchStreamSchema,
      context: ElasticsearchContextSchema,
      incremental: true,
      incrementalFor: (stream) => stream.sortField !== undefined,
      dataKindOf: (stream) => stream.data ?? 'document',
      describe: true,
      ordering:
        'sortField ascending (unique, growing; resumed with a range after the last value), else _shard_doc within one point in time',
    },
    sink: {
      data: ['document', 'embedding'],
      stream: ElasticsearchSinkStreamSchema,
      idempotentBy: '_id (bulk index replaces; data.id or content[idField])',
      dataKindOf: (stream) => stream.data ?? 'document',
      prepare: true,
    },
    discover: true,
    classifyError: classifyElasticsearchError,
    async connect({ credentials, params }) {
      if (options.client) return ElasticsearchConnection.withClient(options.client)
      return ElasticsearchConnection.open(credentials, params)
    },
  })
}

/** The Elasticsearch provider with clients it owns. */
export const elasticsearchProvider = createElasticsearchProvider()
export type ElasticsearchProvider = typeof elasticsearchProvider
