import { raceAbort } from '@nvisy/provider-core'
import type { Pool, PoolConnection } from 'mysql2/promise'
import { mysqlError } from './mysql-errors.js'
import type { ColumnInfo } from './mysql-values.js'
import { checkIdentifier, quoteString } from './mysql-values.js'

/**
 * The session every statement of this package runs in: strict mode (bad values error
 * instead of being truncated), backslash escapes on and ANSI_QUOTES off (the escaping in
 * mysql-values.ts relies on it), TIMESTAMP values in UTC.
 */
export const SESSION_SQL_MODE =
  'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'

/** The mysql2 options that keep values exact; an injected pool must have them. */
export const EXACT_VALUE_OPTIONS = {
  supportBigNumbers: true,
  bigNumberStrings: true,
  dateStrings: true,
  jsonStrings: true,
  decimalNumbers: false,
} as const

export interface TableInfo {
  database: string
  table: string
  type: 'table' | 'view'
  columns: ColumnInfo[]
  byName: Map<string, ColumnInfo>
  /** Case-insensitive lookup: MySQL column names are not case-sensitive. */
  byLowerName: Map<string, ColumnInfo>
  primaryKey: string[]
}

export interface MysqlClientOptions {
  pool: Pool
  /** Database used when a stream names none. */
  database: string | undefined
  statementTimeoutMs?: number | undefined
  /** Whether close() ends the pool. */
  ownsPool: boolean
}

/** A pool plus the session set-up each of its connections gets once, and a cache of table metadata. */
export class MysqlClient {
  readonly pool: Pool
  readonly defaultDatabase: string | undefined
  private readonly statementTimeoutMs: number | undefined
  private readonly ownsPool: boolean
  private readonly prepared = new WeakSet<object>()
  private readonly tables = new Map<string, Promise<TableInfo>>()
  private maxPacket: number | undefined

  constructor(options: MysqlClientOptions) {
    this.pool = options.pool
    this.defaultDatabase = options.database
    this.statementTimeoutMs = options.statementTimeoutMs
    this.ownsPool = options.ownsPool
  }

  /** A pooled connection with this package's session settings. Release it when done. */
  async acquire(signal?: AbortSignal): Promise<PoolConnection> {
    const pending = this.pool.getConnection()
    let connection: PoolConnection
    try {
      connection = await raceAbort(pending, signal)
    } catch (error) {
      pending.then((c) => c.release()).catch(() => {})
      throw error
    }
    const raw = (connection as any).connection ?? connection
    if (!this.prepared.has(raw)) {
      try {
        const isMariaDb =
          Boolean(raw._isMariaDB) || /mariadb/i.test(String(raw.serverVersion ?? ''))
        // net_write_timeout: a streamed read waits while the consumer is slow; the
        // server's default (60 s) would drop the connection mid-result.
        const settings = [
          `time_zone = '+00:00'`,
          `sql_mode = ${quoteString(SESSION_SQL_MODE)}`,
          'net_write_timeout = 900',
        ]
        if (this.statementTimeoutMs !== undefined) {
          settings.push(
            isMariaDb
              ? `max_statement_time = ${(this.statementTimeoutMs / 1000).toFixed(3)}`
              : `max_execution_time = ${Math.round(this.statementTimeoutMs)}`,
          )
        }
        await connection.query(`SET SESSION ${settings.join(', ')}`)
        if (this.maxPacket === undefined) {
          const [rows] = await connection.query({
            sql: 'SELECT @@max_allowed_packet',
            rowsAsArray: true,
          })
          this.maxPacket = Number((rows as unknown[][])[0]?.[0] ?? 4 * 1024 * 1024)
        }
        this.prepared.add(raw)
      } catch (error) {
        connection.release()
        throw error
      }
    }
    return connection
  }

  /** The largest statement this package builds, below the server's max_allowed_packet. */
  statementBytes(): number {
    const packet = this.maxPacket ?? 4 * 1024 * 1024
    return Math.max(64 * 1024, Math.min(8 * 1024 * 1024, packet - 64 * 1024))
  }

  async withConnection<T>(
    signal: AbortSignal | undefined,
    fn: (connection: PoolConnection) => Promise<T>,
  ): Promise<T> {
    const connection = await this.acquire(signal)
    try {
      return await fn(connection)
    } finally {
      connection.release()
    }
  }

  database(explicit: string | undefined): string {
    const database = explicit ?? this.defaultDatabase
    if (!database) {
      throw mysqlError(
        'config',
        'no database: set params.database (or the URL path) or the stream\'s "database"',
      )
    }
    return database
  }

  /** Columns, types and primary key of a table or view, cached for the connection's life. */
  tableInfo(
    database: string,
    table: string,
    signal?: AbortSignal,
    refresh = false,
  ): Promise<TableInfo> {
    checkIdentifier(database)
    checkIdentifier(table)
    const key = `${database}\u0000${table}`
    let info = refresh ? undefined : this.tables.get(key)
    if (!info) {
      info = this.withConnection(signal, (connection) => loadTableInfo(connection, database, table))
      this.tables.set(key, info)
      info.catch(() => this.tables.delete(key))
    }
    return info
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end()
  }
}

async function loadTableInfo(
  connection: PoolConnection,
  database: string,
  table: string,
): Promise<TableInfo> {
  const [tables] = await connection.query({
    sql: `SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_NAME = ${quoteString(table)}`,
    rowsAsArray: true,
  })
  const tableType = (tables as unknown[][])[0]?.[0]
  if (tableType === undefined) {
    throw mysqlError(
      'not_found',
      `table ${JSON.stringify(`${database}.${table}`)} does not exist (or this user cannot see it)`,
      {
        code: '1146',
      },
    )
  }
  const [columnRows] = await connection.query({
    sql:
      'SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS ' +
      `WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_NAME = ${quoteString(table)} ORDER BY ORDINAL_POSITION`,
    rowsAsArray: true,
  })
  const [keyRows] = await connection.query({
    sql:
      'SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE ' +
      `WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_NAME = ${quoteString(table)} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
    rowsAsArray: true,
  })
  const primaryKey = (keyRows as string[][]).map((row) => String(row[0]))
  // MariaDB's JSON is LONGTEXT plus a json_valid() check; MySQL has a real JSON type.
  const jsonColumns = new Set<string>()
  const raw = (connection as any).connection ?? connection
  if (raw._isMariaDB) {
    const [checks] = await connection.query({
      sql:
        'SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS ' +
        `WHERE CONSTRAINT_SCHEMA = ${quoteString(database)} AND TABLE_NAME = ${quoteString(table)}`,
      rowsAsArray: true,
    })
    for (const [clause] of checks as string[][]) {
      const match = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(clause).trim())
      if (match) jsonColumns.add(match[1]!.replace(/``/g, '`'))
    }
  }
  const columns: ColumnInfo[] = (columnRows as unknown[][]).map((row) => {
    const name = String(row[0])
    const dataType = String(row[1])
    return {
      name,
      dataType,
      columnType: String(row[2]),
      nullable: row[3] === 'YES',
      primaryKeyPosition: primaryKey.indexOf(name) + 1,
      json: dataType === 'json' || jsonColumns.has(name),
      nativeType: String(row[4]),
      charset: row[5] == null ? undefined : String(row[5]),
      collation: row[6] == null ? undefined : String(row[6]),
    }
  })
  return {
    database,
    table,
    type: tableType === 'VIEW' || tableType === 'SYSTEM VIEW' ? 'view' : 'table',
    columns,
    byName: new Map(columns.map((c) => [c.name, c])),
    byLowerName: new Map(columns.map((c) => [c.name.toLowerCase(), c])),
    primaryKey,
  }
}

/** Find a column by name (MySQL column names are case-insensitive). */
export function findColumn(info: TableInfo, name: string): ColumnInfo | undefined {
  return info.byName.get(name) ?? info.byLowerName.get(name.toLowerCase())
}
