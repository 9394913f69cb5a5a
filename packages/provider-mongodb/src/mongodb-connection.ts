import {
  type Connection,
  type Data,
  type PartitionOptions,
  type PartitionPlan,
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  raceAbort,
  type StreamInfo,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import { type Db, MongoClient } from 'mongodb'
import { clientSettings } from './mongodb-client.js'
import { prepareCollection } from './mongodb-prepare.js'
import type {
  MongoContext,
  MongoCredentials,
  MongoParams,
  MongoSinkStream,
  MongoStream,
} from './mongodb-schemas.js'
import { deleteDocuments, writeDocuments } from './mongodb-sink.js'
import { partitionCollection, readCollection } from './mongodb-source.js'

const MAX_DISCOVERED = 1000

/** A MongoDB connection: one MongoClient and the default database of the params. */
export class MongoConnection implements Connection<MongoStream, MongoContext, MongoSinkStream> {
  readonly #client: MongoClient
  readonly #database: string
  /** Whether `close()` closes the client (false for a client the caller passed in). */
  readonly #owned: boolean

  constructor(client: MongoClient, database: string, owned: boolean) {
    this.#client = client
    this.#database = database
    this.#owned = owned
  }

  /**
   * Build a client from validated credentials and params and connect it; it is closed again
   * when connecting fails or aborts.
   */
  static async open(
    credentials: MongoCredentials,
    params: MongoParams,
    signal: AbortSignal,
  ): Promise<MongoConnection> {
    const { url, options } = clientSettings(credentials, params)
    let client: MongoClient
    try {
      client = new MongoClient(url, options)
    } catch (error) {
      const name = (error as { name?: string }).name ?? 'Error'
      throw new ProviderError({
        kind: 'config',
        operation: 'connect',
        message: `MongoDB could not use the connection settings (${name}); the connection string is not repeated here because it may hold a password`,
      })
    }
    try {
      await raceAbort(client.connect(), signal)
    } catch (error) {
      await client.close().catch(() => {})
      throw error
    }
    return new MongoConnection(client, params.database, true)
  }

  /** Use a client the caller owns (connected here when it is not yet); `close()` leaves it open. */
  static async borrow(
    client: MongoClient,
    database: string,
    signal: AbortSignal,
  ): Promise<MongoConnection> {
    await raceAbort(client.connect(), signal)
    return new MongoConnection(client, database, false)
  }

  #dbFor(stream: { database?: string | undefined }): Db {
    return this.#client.db(stream.database ?? this.#database)
  }

  async check(): Promise<void> {
    await this.#client.db(this.#database).command({ ping: 1 })
  }

  async discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    const collections = await raceAbort(
      this.#client.db(this.#database).listCollections({}, { nameOnly: true }).toArray(),
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
  }

  read(
    stream: MongoStream,
    { after, signal }: ReadOptions<MongoContext>,
  ): AsyncIterable<ReadItem<MongoContext>> {
    return readCollection(this.#dbFor(stream), stream, after, signal)
  }

  partition(
    stream: MongoStream,
    { count, signal }: PartitionOptions,
  ): Promise<PartitionPlan<MongoStream>> {
    return partitionCollection(this.#dbFor(stream), stream, count, signal)
  }

  prepare(stream: MongoSinkStream, options: PrepareOptions): Promise<PrepareResult> {
    return prepareCollection(this.#dbFor(stream), stream, options)
  }

  write(
    stream: MongoSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    return writeDocuments(this.#dbFor(stream), stream, batch, signal)
  }

  delete(
    stream: MongoSinkStream,
    ids: readonly string[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    return deleteDocuments(this.#dbFor(stream), stream, ids, signal)
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#client.close()
  }
}
