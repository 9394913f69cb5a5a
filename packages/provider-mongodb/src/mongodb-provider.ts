import {
  type Connection,
  defineProvider,
  raceAbort,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import type { MongoClient } from 'mongodb'
import { openClient } from './mongodb-client.js'
import { classifyMongoError } from './mongodb-errors.js'
import { prepareCollection } from './mongodb-prepare.js'
import {
  type MongoContext,
  MongoContextSchema,
  MongoCredentialsSchema,
  MongoParamsSchema,
  type MongoSinkStream,
  MongoSinkStreamSchema,
  type MongoStream,
  MongoStreamSchema,
} from './mongodb-schemas.js'
import { deleteDocuments, writeDocuments } from './mongodb-sink.js'
import { partitionCollection, readCollection } from './mongodb-source.js'
import { VERSION } from './version.js'

export interface MongoProviderOptions {
  /**
   * A MongoClient to use instead of one built from params and credentials. The caller owns
   * it: `close()` leaves it open. It is connected by `connect` when it is not yet.
   */
  client?: MongoClient
}

export type MongoConnection = Connection<MongoStream, MongoContext, MongoSinkStream>

const MAX_DISCOVERED = 1000

function createConnection(client: MongoClient, database: string, owned: boolean): MongoConnection {
  const dbFor = (stream: { database?: string | undefined }) =>
    client.db(stream.database ?? database)
  return {
    async check() {
      await client.db(database).command({ ping: 1 })
    },
    async discover({ signal }) {
      const collections = await raceAbort(
        client.db(database).listCollections({}, { nameOnly: true }).toArray(),
        signal,
      )
      const streams: StreamInfo[] = []
      for (const { name, type } of collections.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (type !== 'collection' || name.startsWith('system.')) continue
        if (streams.length >= MAX_DISCOVERED) break
        streams.push({
          name,
          type: 'collection',
          data: 'document',
          stream: { collection: name },
          fields: [{ name: '_id', type: 'any', primaryKey: true }],
        })
      }
      return streams
    },
    read(stream, { after, signal }) {
      return readCollection(dbFor(stream), stream, after, signal)
    },
    partition(stream, { count, signal }) {
      return partitionCollection(dbFor(stream), stream, count, signal)
    },
    prepare(stream, options) {
      return prepareCollection(dbFor(stream), stream, options)
    },
    write(stream, batch, { signal }) {
      return writeDocuments(dbFor(stream), stream, batch, signal)
    },
    delete(stream, ids, { signal }) {
      return deleteDocuments(dbFor(stream), stream, ids, signal)
    },
    async close() {
      if (owned) await client.close()
    },
  }
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
      if (options.client) {
        await raceAbort(options.client.connect(), signal)
        return createConnection(options.client, params.database, false)
      }
      const client = await openClient(credentials, params, signal)
      return createConnection(client, params.database, true)
    },
  })
}

/** The MongoDB provider with clients it owns. */
export const mongoProvider = createMongoProvider()
export type MongoProvider = typeof mongoProvider
