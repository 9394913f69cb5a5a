import {
  type Connection,
  type Data,
  defineProvider,
  type Logger,
  type PartitionOptions,
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  SPECIFICATION_VERSION,
  type StreamSchema,
  throwIfAborted,
  type WriteOptions,
} from '@nvisy/provider-core'
import pg from 'pg'
import {
  describeTable,
  listTables,
  qualifiedName,
  quoteIdent,
  type TableInfo,
  tableNotFound,
  toStreamInfo,
} from './postgres-catalog.js'
import {
  addColumnsStatement,
  checkIdentifier,
  createTableStatement,
  describeColumns,
  offsetsTableStatement,
} from './postgres-ddl.js'
import { classifyPostgresError } from './postgres-errors.js'
import { partitionTable } from './postgres-partition.js'
import {
  type PostgresContext,
  PostgresContextSchema,
  type PostgresCredentials,
  PostgresCredentialsSchema,
  type PostgresParams,
  PostgresParamsSchema,
  type PostgresSinkStream,
  PostgresSinkStreamSchema,
  type PostgresStream,
  PostgresStreamSchema,
} from './postgres-schemas.js'
import { writeBatch } from './postgres-sink.js'
import { readTable } from './postgres-source.js'
import { VERSION } from './version.js'

/** Session settings every value conversion relies on: UTC instants, ISO dates, hex bytea. */
export const SESSION_SETTINGS: Record<string, string> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  bytea_output: 'hex',
  extra_float_digits: '1',
}

export interface PostgresProviderSettings {
  /**
   * An existing pool to use instead of one built from credentials and params. The
   * provider never ends it; each checkout gets the session settings above.
   */
  pool?: pg.Pool
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
  const tls = params.tls ?? { mode: 'off' }
  const mode = tls.mode ?? 'off'
  if (mode === 'require') config.ssl = { rejectUnauthorized: false }
  else if (mode === 'verify') {
    config.ssl = {
      rejectUnauthorized: true,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.servername ? { servername: tls.servername } : {}),
    }
  } else if (!credentials.url) config.ssl = false
  return config
}

const SET_SESSION = Object.entries(SESSION_SETTINGS)
  .map(([name, value]) => `SET ${name} = '${value}'`)
  .join('; ')

class PostgresConnection
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
    options: { after?: PostgresContext | undefined; signal: AbortSignal },
  ) {
    return readTable(
      { acquire: this.acquire },
      stream,
      stream.schema ?? this.schema,
      options.after,
      options.signal,
    )
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
      return await writeBatch(
        { acquire: this.acquire, table: this.#table, offsets: this.#offsets },
        stream,
        schema,
        batch,
        options.signal,
        options.offset,
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

  /**
   * Create the table (create: ifMissing) or add the columns it lacks (evolve: addColumns), or
   * say what is missing; with dryRun, only say what would be done.
   */
  async prepare(stream: PostgresSinkStream, options: PrepareOptions): Promise<PrepareResult> {
    throwIfAborted(options.signal)
    const schema = stream.schema ?? this.schema
    const client = await this.acquire()
    try {
      for (let attempt = 0; ; attempt++) {
        const info = await describeTable(client, schema, stream.table)
        const actions: string[] = []
        if (!info) {
          if ((stream.create ?? 'never') === 'never') {
            throw new ProviderError({
              kind: 'not_found',
              code: '42P01',
              message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} does not exist and stream.create is "never" (set create: "ifMissing" to create it)`,
            })
          }
          if (!options.schema) {
            throw new ProviderError({
              kind: 'config',
              message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} does not exist and the source did not describe its columns: nothing to create it from`,
            })
          }
          checkIdentifier(stream.table, 'table')
          const namespace = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
            schema,
          ])
          if (namespace.rowCount === 0) {
            checkIdentifier(schema, 'schema')
            actions.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`)
          }
          actions.push(createTableStatement(schema, stream.table, options.schema))
        } else if (options.schema) {
          const missing = options.schema.columns.filter((c) => !info.byName.has(c.name))
          if (missing.length > 0) {
            if ((stream.evolve ?? 'none') === 'none') {
              const names = missing.map((c) => JSON.stringify(c.name)).join(', ')
              throw new ProviderError({
                kind: 'config',
                message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} lacks column(s) ${names} and stream.evolve is "none" (set evolve: "addColumns" to add them)`,
                issues: missing.map((c) => ({
                  path: '/stream/evolve',
                  rule: 'column exists',
                  message: `column ${JSON.stringify(c.name)} is missing`,
                })),
              })
            }
            actions.push(addColumnsStatement(schema, stream.table, missing, options.schema.system))
          }
        }
        if (options.dryRun || actions.length === 0) return { existed: info !== undefined, actions }
        try {
          await client.query('BEGIN')
          for (const action of actions) await client.query(action)
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          // Created by someone else meanwhile: look again (once).
          const code = (error as { code?: string }).code
          if (attempt === 0 && (code === '42P07' || code === '42701')) continue
          throw error
        }
        this.#tables.delete(`${schema}\u0000${stream.table}`)
        return { existed: info !== undefined, actions }
      }
    } finally {
      client.release()
    }
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.end()
  }
}

/** The PostgreSQL provider; pass `pool` to use a pool you own. */
export function createPostgresProvider(settings: PostgresProviderSettings = {}) {
  return defineProvider({
    id: 'postgres',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'PostgreSQL',
    description:
      'Tables and views of a PostgreSQL database: keyset-paginated streaming reads, upsert and COPY writes',
    credentials: PostgresCredentialsSchema,
    params: PostgresParamsSchema,
    source: {
      data: 'record',
      stream: PostgresStreamSchema,
      context: PostgresContextSchema,
      incremental: true,
      describe: true,
      partition: true,
      ordering: 'cursor columns (default: the primary key), primary key appended as tiebreaker',
    },
    sink: {
      data: 'record',
      stream: PostgresSinkStreamSchema,
      idempotentBy:
        'conflict keys (default: the primary key) in upsert mode; append mode is exactly-once with offsets, not idempotent without',
      prepare: true,
      offsets: true,
    },
    discover: true,
    classifyError: classifyPostgresError,
    async connect({ credentials, params }, { logger }) {
      if (settings.pool)
        return new PostgresConnection(settings.pool, false, params.schema ?? 'public', logger)
      const pool = new pg.Pool(poolConfig(credentials, params))
      // An idle client losing its server must not crash the process; the next checkout reconnects.
      pool.on('error', (error) =>
        logger.warn({ code: (error as { code?: string }).code }, 'postgres idle client error'),
      )
      return new PostgresConnection(pool, true, params.schema ?? 'public', logger)
    },
  })
}

export const postgresProvider = createPostgresProvider()
