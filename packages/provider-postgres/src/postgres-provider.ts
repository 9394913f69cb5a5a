import {
  type Connection,
  type Data,
  defineProvider,
  type Logger,
  ProviderError,
  SPECIFICATION_VERSION,
} from '@nvisy/provider-core'
import pg from 'pg'
import {
  describeTable,
  listTables,
  type TableInfo,
  tableNotFound,
  toStreamInfo,
} from './postgres-catalog.js'
import { classifyPostgresError } from './postgres-errors.js'
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

  /** Table metadata for writes, cached per connection (refreshed when a write fails). */
  #table = async (client: pg.PoolClient, schema: string, table: string): Promise<TableInfo> => {
    const key = `${schema}\u0000${table}`
    const cached = this.#tables.get(key)
    if (cached) return cached
    const info = await describeTable(client, schema, table)
    if (!info) throw tableNotFound(schema, table)
    this.#tables.set(key, info)
    return info
  }

  async write(
    stream: PostgresSinkStream,
    batch: readonly Data[],
    options: { signal: AbortSignal },
  ) {
    const schema = stream.schema ?? this.schema
    try {
      return await writeBatch(
        { acquire: this.acquire, table: this.#table },
        stream,
        schema,
        batch,
        options.signal,
      )
    } catch (error) {
      this.#tables.delete(`${schema}\u0000${stream.table}`)
      throw error
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
      ordering: 'cursor columns (default: the primary key), primary key appended as tiebreaker',
    },
    sink: {
      data: 'record',
      stream: PostgresSinkStreamSchema,
      idempotentBy:
        'conflict keys (default: the primary key) in upsert mode; append mode is not idempotent',
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
