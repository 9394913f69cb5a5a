import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { Pinecone } from '@pinecone-database/pinecone'
import { PineconeConnection } from './pinecone-connection.js'
import { classifyPineconeError } from './pinecone-errors.js'
import {
  PineconeContextSchema,
  PineconeCredentialsSchema,
  PineconeParamsSchema,
  PineconeSinkStreamSchema,
  PineconeStreamSchema,
} from './pinecone-schemas.js'
import { VERSION } from './version.js'

export interface PineconeProviderOptions {
  /**
   * A Pinecone client to use instead of one built from the credentials and params. The
   * credentials' apiKey is then not used. Without the provider's own fetch, statuses are
   * classified from the SDK's error classes (a 403 or 429 is recognised by its message).
   */
  client?: Pinecone
}

/** Create the Pinecone provider. Without options it builds its own client per connection. */
export function createPineconeProvider(options: PineconeProviderOptions = {}) {
  return defineProvider({
    id: 'pinecone',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Pinecone',
    description: 'Pinecone vector indexes: embeddings read by listing ids and written by upsert',
    credentials: PineconeCredentialsSchema,
    params: PineconeParamsSchema,
    source: {
      data: 'embedding',
      stream: PineconeStreamSchema,
      context: PineconeContextSchema,
      incremental: true,
      ordering: 'vector id, byte order (list pagination token of the page, then the last id read)',
    },
    sink: {
      data: 'embedding',
      stream: PineconeSinkStreamSchema,
      idempotentBy: 'vector id (upsert)',
      deletes: true,
    },
    discover: true,
    classifyError: classifyPineconeError,
    async connect({ credentials, params }) {
      return PineconeConnection.open(credentials, params, options.client)
    },
  })
}

/** The Pinecone provider with clients it owns. */
export const pineconeProvider = createPineconeProvider()
export type PineconeProvider = typeof pineconeProvider
