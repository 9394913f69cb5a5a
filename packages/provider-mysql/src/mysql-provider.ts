import {
  type Connection,
  defineProvider,
  raceAbort,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import mysql, { type Pool, type PoolOptions } from 'mysql2/promise'
import { EXACT_VALUE_OPTIONS, MysqlClient } from './mysql-client.js'
import { classifyMysqlError, mysqlError } from './mysql-errors.js'
import { partitionTable } from './mysql-partition.js'
import { describeTable, prepareTable, readOffset } from './mysql-prepare.js'
import {
  type MysqlContext,
  MysqlContextSchema,
  type MysqlCredentials,
  MysqlCredentialsSchema,
  type MysqlParams,
  MysqlParamsSchema,
  type MysqlSinkStream,
  MysqlSinkStreamSchema,
  type MysqlStream,
  MysqlStreamSchema,
} from './mysql-schemas.js'
import { writeTable } from './mysql-sink.js'
import { readTable } from './mysql-source.js'
import { quoteString } from './mysql-values.js'
import { VERSION } from './version.js'

export interface MysqlProviderOptions {
  /**
   * An existing mysql2 pool (from `mysql2/promise`) to use instead of creating one from the
   * credentials and params. It must be created with `supportBigNumbers`, `bigNumberStrings`,
   * `dateStrings` and `jsonStrings` set to true (see EXACT_VALUE_OPTIONS); close() leaves it open.
   */
  pool?: Pool
}

export type MysqlConnection = Connection<MysqlStream, MysqlContext, MysqlSinkStream>

/** Turn validated credentials and params into mysql2 pool options. */
export function poolOptions(
  credentials: MysqlCredentials,
  params: MysqlParams,
): PoolOptions & { database?: string } {
  let user: string
  let password: string | undefined
  let host = params.host
  let port = params.port
  let database = params.database
  if ('url' in credentials) {
    let url: URL
    try {
      url = new URL(credentials.url)
    } catch {
      // The URL is a secret: say what is wrong without quoting it.
      throw mysqlError('config', 'invalid /credentials/url: not a parseable mysql:// URL')
    }
    user = decodeURIComponent(url.username)
    password = url.password === '' ? undefined : decodeURIComponent(url.password)
    host ??= url.hostname.replace(/^\[|\]$/g, '') || undefined
    port ??= url.port ? Number(url.port) : undefined
    const path = decodeURIComponent(url.pathname.replace(/^\//, ''))
    database ??= path || undefined
    if (!user) throw mysqlError('config', 'invalid /credentials/url: it names no user')
  } else {
    user = credentials.user
    password = credentials.password
  }
  if (!host)
    throw mysqlError(
      'config',
      'invalid mysql params: /params/host is required (or a host in /credentials/url)',
    )
  const tls = params.tls ?? { mode: 'off' }
  const ssl =
    tls.mode === 'off'
      ? undefined
      : tls.mode === 'require'
        ? { rejectUnauthorized: false }
        : {
            rejectUnauthorized: true,
            ...(tls.ca ? { ca: tls.ca } : {}),
            ...(tls.servername ? { servername: tls.servername } : {}),
          }
  return {
    host,
    port: port ?? 3306,
    user,
    ...(password !== undefined ? { password } : {}),
    ...(database !== undefined ? { database } : {}),
    ...(ssl ? { ssl } : {}),
    connectionLimit: params.poolSize ?? 10,
    connectTimeout: params.connectTimeoutMs ?? 10_000,
    waitForConnections: true,
    queueLimit: 0,
    charset: 'UTF8MB4_GENERAL_CI',
    timezone: 'Z',
    enableKeepAlive: true,
    multipleStatements: false,
    ...EXACT_VALUE_OPTIONS,
  }
}

function checkInjectedPool(pool: Pool): void {
  const config =
    (pool as any).pool?.config?.connectionConfig ?? (pool as any).config?.connectionConfig
  if (!config) return
  const missing = (Object.keys(EXACT_VALUE_OPTIONS) as (keyof typeof EXACT_VALUE_OPTIONS)[]).filter(
    (key) => Boolean(config[key]) !== EXACT_VALUE_OPTIONS[key],
  )
  if (missing.length > 0) {
    throw mysqlError(
      'config',
      `the injected mysql2 pool must be created with ${JSON.stringify(EXACT_VALUE_OPTIONS)}; wrong: ${missing.join(', ')}`,
    )
  }
}

async function discover(client: MysqlClient, signal: AbortSignal): Promise<StreamInfo[]> {
  const database = client.database(undefined)
  const tables = await client.withConnection(signal, async (connection) => {
    const [rows] = await connection.query({
      sql: `SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} ORDER BY TABLE_NAME`,
      rowsAsArray: true,
    })
    return rows as string[][]
  })
  const found: StreamInfo[] = []
  for (const [name, type, comment] of tables) {
    const info = await client.tableInfo(database, String(name), signal, true)
    const entry: StreamInfo = {
      name: String(name),
      type: type === 'VIEW' || type === 'SYSTEM VIEW' ? 'view' : 'table',
      data: 'record',
      stream: { table: String(name), database },
      fields: info.columns.map((c) => ({
        name: c.name,
        type: c.json ? 'json' : c.columnType,
        nullable: c.nullable,
        primaryKey: c.primaryKeyPosition > 0,
      })),
    }
    if (comment) entry.description = String(comment)
    found.push(entry)
  }
  return found
}

/** Create the MySQL/MariaDB provider, optionally over an existing mysql2 pool. */
export function createMysqlProvider(options: MysqlProviderOptions = {}) {
  if (options.pool) checkInjectedPool(options.pool)
  return defineProvider({
    id: 'mysql',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'MySQL / MariaDB',
    description:
      'Tables and views of MySQL 5.7+/8 and MariaDB 10.5+: keyset-paginated exact reads, upserts by key',
    credentials: MysqlCredentialsSchema,
    params: MysqlParamsSchema,
    source: {
      data: 'record',
      stream: MysqlStreamSchema,
      context: MysqlContextSchema,
      incremental: true,
      describe: true,
      partition: true,
      ordering:
        'the cursor columns (default the primary key; the primary key breaks ties), ascending',
    },
    sink: {
      data: 'record',
      stream: MysqlSinkStreamSchema,
      idempotentBy: 'primary key / unique keys (INSERT ... ON DUPLICATE KEY UPDATE)',
      prepare: true,
      offsets: true,
    },
    discover: true,
    classifyError: classifyMysqlError,
    async connect({ credentials, params }): Promise<MysqlConnection> {
      let client: MysqlClient
      if (options.pool) {
        const database =
          params.database ?? (options.pool as any).pool?.config?.connectionConfig?.database
        client = new MysqlClient({
          pool: options.pool,
          database,
          statementTimeoutMs: params.statementTimeoutMs,
          ownsPool: false,
        })
      } else {
        const settings = poolOptions(credentials, params)
        const pool = mysql.createPool(settings)
        // Idle pooled connections that die emit errors; they are replaced on the next acquire.
        ;(pool as any).pool?.on?.('error', () => {})
        client = new MysqlClient({
          pool,
          database: settings.database,
          statementTimeoutMs: params.statementTimeoutMs,
          ownsPool: true,
        })
      }
      return {
        async check() {
          await client.withConnection(undefined, async (connection) => {
            await connection.query('SELECT 1')
            if (client.defaultDatabase) {
              const [rows] = await connection.query({
                sql: `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(client.defaultDatabase)}`,
                rowsAsArray: true,
              })
              if ((rows as unknown[]).length === 0) {
                throw mysqlError(
                  'not_found',
                  `database ${JSON.stringify(client.defaultDatabase)} does not exist`,
                  { code: '1049' },
                )
              }
            }
          })
        },
        discover: ({ signal }) => raceAbort(discover(client, signal), signal),
        read: (stream, readOptions) => readTable(client, stream, readOptions),
        partition: (stream, { count, signal }) => partitionTable(client, stream, count, signal),
        write: (stream, batch, writeOptions) => writeTable(client, stream, batch, writeOptions),
        describeStream: (stream, { signal }) =>
          raceAbort(describeTable(client, stream, signal), signal),
        prepare: (stream, prepareOptions) =>
          raceAbort(prepareTable(client, stream, prepareOptions), prepareOptions.signal),
        readOffset: (stream, key, { signal }) =>
          raceAbort(readOffset(client, stream, key, signal), signal),
        close: () => client.close(),
      }
    },
  })
}

/** The MySQL/MariaDB provider, creating its own mysql2 pool per connection. */
export const mysqlProvider = createMysqlProvider()
