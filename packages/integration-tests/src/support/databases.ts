// Scratch databases for the matrix (a MySQL database and a PostgreSQL schema per test file),
// seeding of the trap table, and the digests each database computes over the canonical text
// of every row (md5 of the concatenated per-row md5s, ordered by key).
import { randomBytes } from 'node:crypto'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { type Kind, mysqlCanonical, pgCanonical, quoteMysql, quotePg } from './canonical.js'
import { KEY, TRAP_COLUMNS, type TrapRow } from './traps.js'

export const POSTGRES_URL =
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

const pgAddress = hostPort(POSTGRES_URL, 5432)
const mysqlAddress = hostPort(MYSQL_URL, 3306)

export const postgresSkipReason = () =>
  serviceSkipReason('PostgreSQL', POSTGRES_URL, () => tcpReachable(pgAddress.host, pgAddress.port))
export const mysqlSkipReason = () =>
  serviceSkipReason('MySQL/MariaDB', MYSQL_URL.replace(/\/\/[^@/]*@/, '//***@'), () =>
    tcpReachable(mysqlAddress.host, mysqlAddress.port),
  )

export interface CanonicalRows {
  digest: string
  count: number
}

export class PgScratch {
  readonly schema = `nvisy_matrix_${randomBytes(4).toString('hex')}`
  readonly pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 })

  connection() {
    const url = new URL(POSTGRES_URL)
    return {
      params: {
        host: pgAddress.host,
        port: pgAddress.port,
        database: url.pathname.slice(1) || 'postgres',
        schema: this.schema,
        connectTimeoutMs: 5000,
      },
      credentials: {
        user: decodeURIComponent(url.username || 'postgres'),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      },
    }
  }

  async create() {
    await this.pool.query(`CREATE SCHEMA ${quotePg(this.schema)}`)
  }

  async drop() {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${quotePg(this.schema)} CASCADE`).catch(() => {})
    await this.pool.end()
  }

  table(name: string) {
    return `${quotePg(this.schema)}.${quotePg(name)}`
  }

  async createTrapTable(name: string, overrides: Record<string, string> = {}) {
    const columns = TRAP_COLUMNS.map((c) => `${quotePg(c.name)} ${overrides[c.name] ?? c.pg}`)
    await this.pool.query(`CREATE TABLE ${this.table(name)} (${columns.join(', ')})`)
  }

  async insertRows(name: string, rows: TrapRow[]) {
    const names = TRAP_COLUMNS.map((c) => quotePg(c.name)).join(', ')
    for (let start = 0; start < rows.length; start += 500) {
      const chunk = rows.slice(start, start + 500)
      const params: (string | null)[] = []
      const tuples = chunk.map((row) => {
        const marks = TRAP_COLUMNS.map((column, i) => {
          let value = row[i] ?? null
          if (value !== null && column.kind === 'binary') value = `\\x${value}`
          params.push(value)
          return `$${params.length}`
        })
        return `(${marks.join(', ')})`
      })
      await this.pool.query(
        `INSERT INTO ${this.table(name)} (${names}) VALUES ${tuples.join(', ')}`,
        params,
      )
    }
  }

  /** pg_type names of a table's columns. */
  async columnTypes(name: string): Promise<Map<string, string>> {
    const { rows } = await this.pool.query(
      `SELECT column_name, udt_name FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2`,
      [this.schema, name],
    )
    return new Map(rows.map((r) => [r.column_name as string, r.udt_name as string]))
  }

  async exists(name: string): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT to_regclass($1) AS t`, [this.table(name)])
    return rows[0].t !== null
  }

  /** The canonical expression per column, by its kind and the destination's actual type. */
  private async expressions(name: string, columns: { name: string; kind: Kind }[]) {
    const types = await this.columnTypes(name)
    return columns.map((c) => {
      const udt = types.get(c.name)
      if (!udt) throw new Error(`${this.table(name)} has no column ${quotePg(c.name)}`)
      return pgCanonical(`t.${quotePg(c.name)}`, c.kind, udt)
    })
  }

  /** md5 over every row's canonical text, ordered by the key, computed by PostgreSQL. */
  async digest(name: string, columns = TRAP_COLUMNS): Promise<CanonicalRows> {
    const expressions = await this.expressions(name, columns)
    const { rows } = await this.pool.query(
      `SELECT md5(coalesce(string_agg(md5(concat_ws('|', ${expressions.join(', ')})), '' ORDER BY t.${quotePg(KEY)}), '')) AS h,
              count(*)::int AS n
       FROM ${this.table(name)} t`,
    )
    return { digest: rows[0].h, count: rows[0].n }
  }

  /** Each row's canonical texts (for a readable diff when digests differ). */
  async canonicalRows(name: string, columns = TRAP_COLUMNS): Promise<Map<string, string[]>> {
    const expressions = await this.expressions(name, columns)
    const { rows } = await this.pool.query({
      text: `SELECT ${expressions.join(', ')} FROM ${this.table(name)} t ORDER BY t.${quotePg(KEY)}`,
      rowMode: 'array',
    })
    return new Map(rows.map((r: string[]) => [r[0]!, r]))
  }

  async count(name: string): Promise<number> {
    const { rows } = await this.pool.query(`SELECT count(*)::int AS n FROM ${this.table(name)}`)
    return rows[0].n
  }
}

export class MysqlScratch {
  readonly database = `nvisy_matrix_${randomBytes(4).toString('hex')}`
  readonly pool = mysql.createPool({
    uri: MYSQL_URL,
    connectionLimit: 2,
    multipleStatements: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  })

  connection() {
    const url = new URL(MYSQL_URL)
    return {
      params: {
        host: mysqlAddress.host,
        port: mysqlAddress.port,
        database: this.database,
        connectTimeoutMs: 5000,
      },
      credentials: {
        user: decodeURIComponent(url.username || 'root'),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      },
    }
  }

  /** A statement in a session with UTC time and strict mode. */
  async query<T = unknown>(sql: string, values?: unknown[]): Promise<T> {
    const connection = await this.pool.getConnection()
    try {
      await connection.query(
        `SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO', group_concat_max_len = 1073741824`,
      )
      const [rows] = await connection.query(sql, values)
      return rows as T
    } finally {
      connection.release()
    }
  }

  async create() {
    await this.query(`CREATE DATABASE ${quoteMysql(this.database)} CHARACTER SET utf8mb4`)
  }

  async drop() {
    await this.query(`DROP DATABASE IF EXISTS ${quoteMysql(this.database)}`).catch(() => {})
    await this.pool.end()
  }

  table(name: string) {
    return `${quoteMysql(this.database)}.${quoteMysql(name)}`
  }

  async createTrapTable(name: string, overrides: Record<string, string> = {}) {
    const columns = TRAP_COLUMNS.map((c) => `${quoteMysql(c.name)} ${overrides[c.name] ?? c.mysql}`)
    await this.query(
      `CREATE TABLE ${this.table(name)} (${columns.join(', ')}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    )
  }

  async insertRows(name: string, rows: TrapRow[]) {
    const names = TRAP_COLUMNS.map((c) => quoteMysql(c.name)).join(', ')
    for (let start = 0; start < rows.length; start += 500) {
      const chunk = rows.slice(start, start + 500)
      const values: unknown[] = []
      const tuples = chunk.map((row) => {
        const marks = TRAP_COLUMNS.map((column, i) => {
          const value = row[i] ?? null
          if (value === null) return 'NULL'
          if (typeof column.kind === 'object') {
            values.push(BigInt(`0b${value}`).toString())
            return 'CAST(? AS UNSIGNED)'
          }
          if (column.kind === 'binary') {
            values.push(Buffer.from(value, 'hex'))
            return '?'
          }
          if (column.kind === 'float') {
            values.push(value)
            return 'CAST(? AS DOUBLE)'
          }
          values.push(value)
          return '?'
        })
        return `(${marks.join(', ')})`
      })
      await this.query(
        `INSERT INTO ${this.table(name)} (${names}) VALUES ${tuples.join(', ')}`,
        values,
      )
    }
  }

  async exists(name: string): Promise<boolean> {
    const rows = await this.query<{ n: number }[]>(
      'SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
      [this.database, name],
    )
    return Number(rows[0]!.n) === 1
  }

  async digest(name: string, columns = TRAP_COLUMNS): Promise<CanonicalRows> {
    const expressions = columns.map((c) => mysqlCanonical(`t.${quoteMysql(c.name)}`, c.kind))
    const rows = await this.query<{ h: string | null; n: number }[]>(
      `SELECT MD5(COALESCE(GROUP_CONCAT(MD5(CONCAT_WS('|', ${expressions.join(', ')})) ORDER BY t.${quoteMysql(KEY)} SEPARATOR ''), '')) AS h,
              COUNT(*) AS n
       FROM ${this.table(name)} t`,
    )
    return { digest: rows[0]!.h ?? '', count: Number(rows[0]!.n) }
  }

  async canonicalRows(name: string, columns = TRAP_COLUMNS): Promise<Map<string, string[]>> {
    const expressions = columns.map((c) => mysqlCanonical(`t.${quoteMysql(c.name)}`, c.kind))
    const connection = await this.pool.getConnection()
    try {
      await connection.query(`SET SESSION time_zone = '+00:00'`)
      const [rows] = await connection.query({
        sql: `SELECT ${expressions.join(', ')} FROM ${this.table(name)} t ORDER BY t.${quoteMysql(KEY)}`,
        rowsAsArray: true,
      })
      return new Map((rows as string[][]).map((r) => [String(r[0]), r.map(String)]))
    } finally {
      connection.release()
    }
  }

  async count(name: string): Promise<number> {
    const rows = await this.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${this.table(name)}`)
    return Number(rows[0]!.n)
  }
}

/** The first differences between two sides' canonical rows: `key column: source != destination`. */
export function firstDifferences(
  source: Map<string, string[]>,
  destination: Map<string, string[]>,
  limit = 12,
): string[] {
  const out: string[] = []
  for (const [key, row] of source) {
    const other = destination.get(key)
    if (!other) {
      out.push(`key ${key}: missing in the destination`)
    } else {
      row.forEach((value, i) => {
        if (other[i] !== value)
          out.push(`key ${key} ${TRAP_COLUMNS[i]?.name}: ${value} != ${other[i]}`)
      })
    }
    if (out.length >= limit) return out
  }
  for (const key of destination.keys()) {
    if (!source.has(key)) out.push(`key ${key}: only in the destination`)
    if (out.length >= limit) break
  }
  return out
}
