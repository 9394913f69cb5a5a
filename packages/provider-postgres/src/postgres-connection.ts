import {
  COLUMNS_WIRE,
  type Connection,
  type Data,
  type Logger,
  type PartitionOptions,
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  type StreamSchema,
  throwIfAborted,
  tlsConnectOptions,
  type WireAnswer,
  type WireOffer,
  type WireReadOptions,
  type WriteOptions,
} from '@nvisy/provider-core'
import pg from 'pg'
import {
  describeTable,
  listTables,
  qualifiedName,
  type TableInfo,
  tableNotFound,
  toStreamInfo,
} from './postgres-catalog.js'
import { describeColumns, offsetsTableStatement } from './postgres-ddl.js'
import { partitionTable } from './postgres-partition.js'
import type {
  PostgresContext,
  PostgresCredentials,
  PostgresParams,
  PostgresSinkStream,
  PostgresStream,
} from './postgres-schemas.js'
import { prepareTable, writeBatch, writeWireBatch } from './postgres-sink.js'
import { readColumns, readTable } from './postgres-source.js'
import { acceptWire, COPY_TEXT, readWire, wireOffer } from './postgres-wire.js'

/**
 * Session settings every value conversion (and COPY text passed through) relies on: UTF-8
 * text whatever the database's encoding, UTC instants, ISO dates, hex bytea, shortest-exact
 * floats.
 */
export const SESSION_SETTINGS: Record<string, string> = {
  client_encoding: 'UTF8',
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  bytea_output: 'hex',
  extra_float_digits: '1',
}

function configIssue(path: string, message: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `invalid postgres params: ${path} ${message}`,
    issues: [{ path, rule: 'required', message }],
  })
}

/** node-postgres pool settings from validated credentials and params. */
export function poolConfig(
  credentials: PostgresCredentials,
  params: PostgresParams,
): pg.PoolConfig {
  const config: pg.PoolConfig = {
    max: params.poolSize ?? 4,
    connectionTimeoutMillis: params.connectTimeoutMs ?? 10_000,
    application_name: params.applicationName ?? 'nvisy',
    options: Object.entries(SESSION_SETTINGS)
      .map(([name, value]) => `-c ${name}=${value.replace(/ /g, '\\ ')}`)
      .join(' '),
  }
  if (params.statementTimeoutMs !== undefined) config.statement_timeout = params.statementTimeoutMs
  if (credentials.url) {
    config.connectionString = credentials.url
  } else {
    if (!credentials.user)
      throw configIssue('/credentials/user', 'is required unless credentials.url is set')
    if (!params.host) throw configIssue('/params/host', 'is required unless credentials.url is set')
    if (!params.database)
      throw configIssue('/params/database', 'is required unless credentials.url is set')
    config.user = credentials.user
    if (credentials.password !== undefined) config.password = credentials.password
    config.host = params.host
    config.port = params.port ?? 5432
    config.database = params.database
  }
  if (params.host && credentials.url) config.host = params.host
  if (params.port && credentials.url) config.port = params.port
  if (params.database && credentials.url) config.database = params.database
  const ssl = tlsConnectOptions(params.tls)
  if (ssl) config.ssl = ssl
  else if (!credentials.url) config.ssl = false
  return config
}

const SET_SESSION = Object.entries(SESSION_SETTINGS)
  .map(([name, value]) => `SET ${name} = '${value}'`)
  .join('; ')

/**
 * A PostgreSQL connection: a pg pool (built from credentials and params and ended on close,
 * or the caller's, left open) whose checkouts carry the session settings; reads, partitions
 * and writes go to postgres-source, postgres-partition and postgres-sink.
 */
export class PostgresConnection
  implements Connection<PostgresStream, PostgresContext, PostgresSinkStream>
{
  readonly #tables = new Map<string, TableInfo>()
  /** Offsets tables known to exist (created when missing), by qualified name. */
  readonly #offsetTables = new Set<string>()

  constructor(
    readonly pool: pg.Pool,
    readonly owned: boolean,
    readonly schema: string,
    readonly logger: Logger,
  ) {}

  /** Connect with a pool built from these settings, or with `pool` (never ended here). */
  static open(
    { credentials, params }: { credentials: PostgresCredentials; params: PostgresParams },
    { logger }: { logger: Logger },
    pool?: pg.Pool,
  ): PostgresConnection {
    const schema = params.schema ?? 'public'
    if (pool) return new PostgresConnection(pool, false, schema, logger)
    const owned = new pg.Pool(poolConfig(credentials, params))
    // An idle client losing its server must not crash the process; the next checkout reconnects.
    owned.on('error', (error) =>
      logger.warn({ code: (error as { code?: string }).code }, 'postgres idle client error'),
    )
    return new PostgresConnection(owned, true, schema, logger)
  }

  readonly #guarded = new WeakSet<pg.PoolClient>()

  acquire = async (): Promise<pg.PoolClient> => {
    const client = await this.pool.connect()
    // A checked-out client whose server goes away emits 'error' between queries; unheard, it
    // would crash the process. The query in flight (or the next one) fails and is classified.
    if (!this.#guarded.has(client)) {
      this.#guarded.add(client)
      client.on('error', (error) =>
        this.logger.debug({ code: (error as { code?: string }).code }, 'postgres client error'),
      )
    }
    if (!this.owned) {
      try {
        await client.query(SET_SESSION)
      } catch (error) {
        client.release(true)
        throw error
      }
    }
    return client
  }

  async check(): Promise<void> {
    const client = await this.acquire()
    try {
      await client.query('SELECT 1')
    } finally {
      client.release()
    }
  }

  async discover(): Promise<ReturnType<typeof toStreamInfo>[]> {
    const client = await this.acquire()
    try {
      return (await listTables(client)).map(toStreamInfo)
    } finally {
      client.release()
    }
  }

  read(
    stream: PostgresStream,
    options: {
      after?: PostgresContext | undefined
      signal: AbortSignal
      wire?: WireReadOptions | undefined
    },
  ) {
    const deps = { acquire: this.acquire }
    const schema = stream.schema ?? this.schema
    const { after, wire, signal } = options
    if (!wire) return readTable(deps, stream, schema, after, signal)
    const read = wire.format === COLUMNS_WIRE ? readColumns : readWire
    return read(deps, stream, schema, after, wire, signal)
  }

  partition(stream: PostgresStream, options: PartitionOptions) {
    return partitionTable(
      { acquire: this.acquire },
      stream,
      stream.schema ?? this.schema,
      options.count,
      options.signal,
    )
  }

  /** Table metadata for writes, cached per connection (refreshed when a write fails). */
  #table = async (
    client: pg.PoolClient,
    schema: string,
    table: string,
    refresh = false,
  ): Promise<TableInfo> => {
    const key = `${schema}\u0000${table}`
    const cached = refresh ? undefined : this.#tables.get(key)
    if (cached) return cached
    const info = await describeTable(client, schema, table)
    if (!info) throw tableNotFound(schema, table)
    this.#tables.set(key, info)
    return info
  }

  /** The offsets table of a sink stream, created when missing (once per connection). */
  #offsets = async (
    client: pg.PoolClient,
    schema: string,
    stream: PostgresSinkStream,
  ): Promise<string> => {
    const name = qualifiedName(schema, stream.offsetsTable ?? '_nvisy_offsets')
    if (this.#offsetTables.has(name)) return name
    try {
      await client.query(offsetsTableStatement(name))
    } catch (error) {
      // Two connections creating it at once: one wins, the other sees a duplicate.
      const code = (error as { code?: string }).code
      if (code !== '42P07' && code !== '23505') throw error
    }
    this.#offsetTables.add(name)
    return name
  }

  async write(stream: PostgresSinkStream, batch: readonly Data[], options: WriteOptions) {
    const schema = stream.schema ?? this.schema
    try {
      const deps = { acquire: this.acquire, table: this.#table, offsets: this.#offsets }
      return options.wire === COPY_TEXT
        ? await writeWireBatch(deps, stream, schema, batch, options.signal, options.offset)
        : await writeBatch(
            deps,
            stream,
            schema,
            batch,
            options.signal,
            options.offset,
            options.wire,
          )
    } catch (error) {
      this.#tables.delete(`${schema}\u0000${stream.table}`)
      this.#offsetTables.clear()
      throw error
    }
  }

  async readOffset(
    stream: PostgresSinkStream,
    key: string,
    options: { signal: AbortSignal },
  ): Promise<unknown> {
    throwIfAborted(options.signal)
    const schema = stream.schema ?? this.schema
    const name = qualifiedName(schema, stream.offsetsTable ?? '_nvisy_offsets')
    const client = await this.acquire()
    try {
      const result = await client.query<{ context: string }>({
        text: `SELECT context::text AS context FROM ${name} WHERE key = $1`,
        values: [key],
      })
      const row = result.rows[0]
      return row ? JSON.parse(row.context) : undefined
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') return undefined // no offsets table yet
      throw error
    } finally {
      client.release()
    }
  }

  async describeStream(
    stream: PostgresStream,
    options: { signal: AbortSignal },
  ): Promise<StreamSchema> {
    throwIfAborted(options.signal)
    const schema = stream.schema ?? this.schema
    const client = await this.acquire()
    try {
      const info = await describeTable(client, schema, stream.table)
      if (!info) throw tableNotFound(schema, stream.table)
      return describeColumns(info, stream.columns)
    } finally {
      client.release()
    }
  }

  /** The stream as COPY text or column batches: its columns and their types, or why not. */
  async wireOffer(
    stream: PostgresStream,
    format: string,
    options: { signal: AbortSignal },
  ): Promise<WireOffer | { reason: string }> {
    throwIfAborted(options.signal)
    const client = await this.acquire()
    try {
      return await wireOffer(client, stream.schema ?? this.schema, stream, format)
    } finally {
      client.release()
    }
  }

  /** Whether the destination takes the offered rows as they are (COPY text: same columns and types; nvisy-columns: columns that exist). */
  async acceptWire(
    stream: PostgresSinkStream,
    offer: WireOffer,
    options: { signal: AbortSignal },
  ): Promise<WireAnswer> {
    throwIfAborted(options.signal)
    const schema = stream.schema ?? this.schema
    const client = await this.acquire()
    try {
      const table = await this.#table(client, schema, stream.table, true)
      // An upsert passes COPY text through a temporary staging table: the role must be
      // allowed to create one in this database.
      const temporary =
        (stream.mode ?? 'upsert') === 'append' ||
        (
          await client.query<{ ok: boolean }>(
            "SELECT has_database_privilege(current_database(), 'TEMPORARY') AS ok",
          )
        ).rows[0]?.ok === true
      return acceptWire(table, stream, offer, { temporary })
    } finally {
      client.release()
    }
  }

  /**
   * Create the table (create: ifMissing) or add the columns it lacks (evolve: addColumns), or
   * say what is missing; with dryRun, only say what would be done.
   */
  async prepare(stream: PostgresSinkStream, options: PrepareOptions): Promise<PrepareResult> {
    throwIfAborted(options.signal)
    const schema = stream.schema ?? this.schema
    const client = await this.acquire()
    try {
      const result = await prepareTable(client, schema, stream, options)
      if (!options.dryRun && result.actions.length > 0)
        this.#tables.delete(`${schema}\u0000${stream.table}`)
      return result
    } finally {
      client.release()
    }
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.end()
  }
}
