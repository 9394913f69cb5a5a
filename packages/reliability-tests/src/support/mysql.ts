// MySQL/MariaDB helpers: a database per test file, a seeded source table, and the md5 the
// server computes over every row's exact text (ordered by key) that proves two tables hold
// the same data.
import { randomBytes } from 'node:crypto'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import mysql from 'mysql2/promise'

export const MYSQL_URL = process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
export const mysqlAddress = hostPort(MYSQL_URL, 3306)

export function mysqlSkipReason() {
  return serviceSkipReason('MySQL/MariaDB', MYSQL_URL.replace(/\/\/[^@/]*@/, '//***@'), () =>
    tcpReachable(mysqlAddress.host, mysqlAddress.port),
  )
}

export class TestDatabase {
  readonly name = `nvisy_rel_${randomBytes(4).toString('hex')}`
  readonly pool = mysql.createPool({
    uri: MYSQL_URL,
    connectionLimit: 2,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  })

  /** The provider's connection for a pipeline node. */
  connection() {
    const url = new URL(MYSQL_URL)
    return {
      params: {
        host: mysqlAddress.host,
        port: mysqlAddress.port,
        database: this.name,
        connectTimeoutMs: 3000,
      },
      credentials: {
        user: decodeURIComponent(url.username || 'root'),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      },
    }
  }

  private async query<T>(sql: string, values?: unknown[]): Promise<T> {
    const connection = await this.pool.getConnection()
    try {
      await connection.query(
        `SET SESSION time_zone = '+00:00', group_concat_max_len = 1073741824, sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`,
      )
      const [rows] = await connection.query(sql, values)
      return rows as T
    } finally {
      connection.release()
    }
  }

  async create() {
    await this.query(`CREATE DATABASE \`${this.name}\` CHARACTER SET utf8mb4`)
  }

  async drop() {
    await this.query(`DROP DATABASE IF EXISTS \`${this.name}\``).catch(() => {})
    await this.pool.end()
  }

  /** BIGINT key, text with quotes, DECIMAL, microsecond DATETIME, JSON; optionally no primary key. */
  async createTable(table: string, options: { primaryKey?: boolean } = {}) {
    await this.query(`CREATE TABLE \`${this.name}\`.\`${table}\` (
      id BIGINT NOT NULL${options.primaryKey === false ? '' : ' PRIMARY KEY'},
      name VARCHAR(200) NOT NULL,
      amount DECIMAL(18, 6),
      at DATETIME(6),
      doc JSON
    ) CHARACTER SET utf8mb4`)
  }

  async seed(table: string, from: number, to: number) {
    for (let start = from; start <= to; start += 2000) {
      const end = Math.min(to, start + 1999)
      const values: unknown[] = []
      const tuples: string[] = []
      for (let g = start; g <= end; g++) {
        tuples.push('(?, ?, ?, ?, ?)')
        const micros = String(g % 1_000_000).padStart(6, '0')
        const at = new Date(Date.UTC(2024, 0, 1) + g * 1000).toISOString().slice(0, 19)
        values.push(
          g,
          `row ${g} "quoted" 'single' ${g.toString(36)}`,
          `${g}.${String(g % 1_000_000).padStart(6, '0')}`,
          `${at.replace('T', ' ')}.${micros}`,
          JSON.stringify({
            g,
            big: (9007199254740993n + BigInt(g)).toString(),
            nested: { x: g % 3 },
          }),
        )
      }
      await this.query(
        `INSERT INTO \`${this.name}\`.\`${table}\` (id, name, amount, at, doc) VALUES ${tuples.join(', ')}`,
        values,
      )
    }
  }

  async count(table: string): Promise<number> {
    const rows = await this.query<{ n: number }[]>(
      `SELECT COUNT(*) AS n FROM \`${this.name}\`.\`${table}\``,
    )
    return Number(rows[0]!.n)
  }

  /** How many rows repeat a key (0 when every key is there once). */
  async duplicates(table: string): Promise<number> {
    const rows = await this.query<{ n: number }[]>(
      `SELECT COUNT(*) - COUNT(DISTINCT id) AS n FROM \`${this.name}\`.\`${table}\``,
    )
    return Number(rows[0]!.n)
  }

  /** md5 over every row's exact text, ordered by key, computed by the server. */
  async md5(table: string): Promise<string> {
    const rows = await this.query<{ h: string }[]>(
      `SELECT MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', id, HEX(name), amount,
                DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), HEX(doc))) ORDER BY id SEPARATOR '')) AS h
       FROM \`${this.name}\`.\`${table}\``,
    )
    return rows[0]!.h
  }
}
