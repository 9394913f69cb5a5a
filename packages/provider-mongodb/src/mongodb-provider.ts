import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { MongoClient } from 'mongodb'
import { MongoConnection } from './mongodb-connection.js'
import { classifyMongoError } from './mongodb-errors.js'
import {
  MongoContextSchema,
  MongoCredentialsSchema,
  MongoParamsSchema,
  MongoSinkStreamSchema,
  MongoStreamSchema,
} from './mongodb-schemas.js'
import { VERSION } from './version.js'

export interface MongoProviderOptions {
  /**
   * A MongoClient to use instead of one built from params and credentials. The caller owns
   * it: `close()` leaves it open. It is connected by `connect` when it is not yet.
   */
  client?: MongoClient
}

/**
 * Create the MongoDB provider. Without options it builds its own MongoClient per
 * connection from the validated params and credentials.
 */
export function createMongoProvider(options: MongoProviderOptions = {}) {
  return defineProvider({
    id: 'mongodb',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'MongoDB',
    description:
      'MongoDB collections as documents in canonical Extended JSON: read in _id order (or a monotonic field then _id), upserted by _id',
    credentials: MongoCredentialsSchema,
    params: MongoParamsSchema,
    source: {
      data: 'document',
      stream: MongoStreamSchema,
      context: MongoContextSchema,
      incremental: true,
      partition: true,
      ordering:
        '_id ascending in BSON order (or [cursorField, _id]); resumed with _id > last (and the types that sort after it)',
    },
    sink: {
      data: 'document',
      stream: MongoSinkStreamSchema,
      idempotentBy: '_id (replaceOne upsert; content._id, else data.id)',
      deletes: true,
      prepare: true,
    },
    discover: true,
    classifyError: classifyMongoError,
    async connect({ credentials, params }, { signal }) {
      if (options.client) return MongoConnection.borrow(options.client, params.database, signal)
      return MongoConnection.open(credentials, params, signal)
    },
  })
}

/** The MongoDB provider with clients it owns. */
export const mongoProvider = createMongoProvider()
export type MongoProvider = typeof mongoProvider
