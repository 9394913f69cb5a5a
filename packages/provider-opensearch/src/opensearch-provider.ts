import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { Client } from '@opensearch-project/opensearch'
import { OpenSearchConnection } from './opensearch-connection.js'
import { classifyOpenSearchError } from './opensearch-errors.js'
import {
  OpenSearchContextSchema,
  OpenSearchCredentialsSchema,
  OpenSearchParamsSchema,
  OpenSearchSinkStreamSchema,
  OpenSearchStreamSchema,
} from './opensearch-schemas.js'
import { VERSION } from './version.js'

export interface OpenSearchProviderOptions {
  /** A client to use instead of one built from params and credentials; `close()` leaves it open. */
  client?: Client
}

/** Create the OpenSearch provider. */
export function createOpenSearchProvider(options: OpenSearchProviderOptions = {}) {
  return defineProvider({
    id: 'opensearch',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'OpenSearch',
    description:
      'OpenSearch 2.x/3.x indices and data streams: read in a point in time with search_after as documents or embeddings (knn_vector), written with _bulk by _id',
    credentials: OpenSearchCredentialsSchema,
    params: OpenSearchParamsSchema,
    source: {
      data: ['document', 'embedding'],
      stream: OpenSearchStreamSchema,
      context: OpenSearchContextSchema,
      incremental: true,
      incrementalFor: (stream) => stream.sortField !== undefined,
      dataKindOf: (stream) => stream.data ?? 'document',
      describe: true,
      ordering:
        'sortField ascending (unique, growing; resumed with a range after the last value), else _shard_doc within one point in time',
    },
    sink: {
      data: ['document', 'embedding'],
      stream: OpenSearchSinkStreamSchema,
      idempotentBy: '_id (bulk index replaces; data.id or content[idField])',
      dataKindOf: (stream) => stream.data ?? 'document',
      prepare: true,
    },
    discover: true,
    classifyError: classifyOpenSearchError,
    async connect({ credentials, params }) {
      if (options.client) return OpenSearchConnection.withClient(options.client)
      return OpenSearchConnection.open(credentials, params)
    },
  })
}

/** The OpenSearch provider with clients it owns. */
export const opensearchProvider = createOpenSearchProvider()
export type OpenSearchProvider = typeof opensearchProvider
