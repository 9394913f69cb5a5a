import {
  COLUMNS_WIRE,
  type Connection,
  type Data,
  type PartitionOptions,
  type PrepareOptions,
  type ReadOptions,
  raceAbort,
  tlsConnectOptions,
  type WireOffer,
  type WriteOptions,
} from '@nvisy/provider-core'
import mysql, { type Pool, type PoolOptions } from 'mysql2/promise'
import { EXACT_VALUE_OPTIONS, MysqlClient } from './mysql-client.js'
import { columnsOffer, readColumns } from './mysql-columns.js'
import { copyTextOffer, POSTGRES_COPY_TEXT, readCopyText } from './mysql-copy-text.js'
import { mysqlError } from './mysql-errors.js'
import { partitionTable } from './mysql-partition.js'
import { describeTable, prepareTable, readOffset } from './mysql-prepare.js'
import type {
  MysqlContext,
  MysqlCredentials,
  MysqlParams,
  MysqlSinkStream,
  MysqlStream,
} from './mysql-schemas.js'
import { acceptColumns, writeTable } from './mysql-sink.js'
import { discoverTables, readTable } from './mysql-source.js'
import { quoteString } from './mysql-values.js'

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
  const ssl = tlsConnectOptions(params.tls)
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

/** Refuse an injected pool whose options would change values (see EXACT_VALUE_OPTIONS). */
export function checkInjectedPool(pool: Pool): void {
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

/**
 * A MySQL/MariaDB connection: a mysql2 pool (created from credentials and params and ended on
 * close, or the caller's, left open) behind a `MysqlClient`; reads, partitions, writes and
 * table preparation go to mysql-source, mysql-partition, mysql-sink and mysql-prepare.
 */
export class MysqlConnection implements Connection<MysqlStream, MysqlContext, MysqlSinkStream> {
  constructor(readonly client: MysqlClient) {}

  /** Connect with a pool created from these settings, or over `pool` (never ended here). */
  static open(
    { credentials, params }: { credentials: MysqlCredentials; params: MysqlParams },
    pool?: Pool,
  ): MysqlConnection {
    if (pool) {
      const database = params.database ?? (pool as any).pool?.config?.connectionConfig?.database
      return new MysqlConnection(
        new MysqlClient({
          pool,
          database,
          statementTimeoutMs: params.statementTimeoutMs,
          ownsPool: false,
        }),
      )
    }
    const settings = poolOptions(credentials, params)
    const owned = mysql.createPool(settings)
    // Idle pooled connections that die emit errors; they are replaced on the next acquire.
    ;(owned as any).pool?.on?.('error', () => {})
    return new MysqlConnection(
      new MysqlClient({
        pool: owned,
        database: settings.database,
        statementTimeoutMs: params.statementTimeoutMs,
        ownsPool: true,
      }),
    )
  }

  async check(): Promise<void> {
    const client = this.client
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
  }

  discover({ signal }: { signal: AbortSignal }) {
    return raceAbort(discoverTables(this.client, signal), signal)
  }

  read(stream: MysqlStream, options: ReadOptions<MysqlContext>) {
    if (options.wire?.format === POSTGRES_COPY_TEXT)
      return readCopyText(this.client, stream, options, options.wire)
    if (options.wire?.format === COLUMNS_WIRE)
      return readColumns(this.client, stream, options, options.wire)
    return readTable(this.client, stream, options)
  }

  /**
   * The stream's rows as PostgreSQL COPY text made from the server's own text (when every
   * output column's text is one PostgreSQL reads as the same value, see mysql-copy-text), or
   * as `nvisy-columns` batches: the output columns and their types.
   */
  wireOffer(stream: MysqlStream, format: string, { signal }: { signal: AbortSignal }) {
    if (format === POSTGRES_COPY_TEXT)
      return raceAbort(copyTextOffer(this.client, stream, signal), signal)
    return raceAbort(columnsOffer(this.client, stream, signal), signal)
  }

  partition(stream: MysqlStream, { count, signal }: PartitionOptions) {
    return partitionTable(this.client, stream, count, signal)
  }

  /** Records, or with `options.wire` `nvisy-columns` batches: see mysql-sink. */
  write(stream: MysqlSinkStream, batch: readonly Data[], options: WriteOptions) {
    return writeTable(this.client, stream, batch, options)
  }

  /** Whether the table takes `nvisy-columns` batches of the offered columns (it has them all). */
  acceptWire(stream: MysqlSinkStream, offer: WireOffer, { signal }: { signal: AbortSignal }) {
    return raceAbort(acceptColumns(this.client, stream, offer, signal), signal)
  }

  describeStream(stream: MysqlStream, { signal }: { signal: AbortSignal }) {
    return raceAbort(describeTable(this.client, stream, signal), signal)
  }

  prepare(stream: MysqlSinkStream, options: PrepareOptions) {
    return raceAbort(prepareTable(this.client, stream, options), options.signal)
  }

  readOffset(stream: MysqlSinkStream, key: string, { signal }: { signal: AbortSignal }) {
    return raceAbort(readOffset(this.client, stream, key, signal), signal)
  }

  close(): Promise<void> {
    return this.client.close()
  }
}
