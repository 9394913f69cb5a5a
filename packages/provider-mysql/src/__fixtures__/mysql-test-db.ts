// Test support: a database of its own per test file on the MariaDB/MySQL server named by
// NVISY_TEST_MYSQL_URL (default: root without password on 127.0.0.1:3306).
import { randomBytes } from 'node:crypto'
import type { ConnectInput } from '@nvisy/provider-core'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import mysql, { type Pool } from 'mysql2/promise'

export const TEST_URL = process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

export function mysqlSkipReason(): Promise<string | false> {
  const { host, port } = hostPort(TEST_URL, 3306)
  return serviceSkipReason('MySQL/MariaDB', `${host}:${port}`, () => tcpReachable(host, port))
}

/** The test server and its login, from TEST_URL, as mysql2 connection options. */
export function testServerOptions() {
  const url = new URL(TEST_URL)
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  }
}

export interface TestDatabase {
  name: string
  /** An admin pool on the test database, with the exact-value options. */
  admin: Pool
  /** Provider input for the test database. */
  input(extra?: Record<string, unknown>): ConnectInput
  /** Run SQL on the test database. */
  sql(text: string): Promise<any[]>
  drop(): Promise<void>
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `nvisy_${randomBytes(5).toString('hex')}`
  const base = testServerOptions()
  const bootstrap = await mysql.createConnection(base)
  await bootstrap.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`)
  await bootstrap.end()
  const admin = mysql.createPool({
    ...base,
    database: name,
    connectionLimit: 4,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    jsonStrings: true,
    timezone: 'Z',
  })
  admin.on('connection', (connection) => {
    connection.query(`SET SESSION time_zone = '+00:00'`)
  })
  return {
    name,
    admin,
    input(extra = {}) {
      const credentials: Record<string, unknown> = { user: base.user }
      if (base.password) credentials.password = base.password
      return { credentials, params: { host: base.host, port: base.port, database: name, ...extra } }
    },
    async sql(text) {
      const [rows] = await admin.query(text)
      return rows as any[]
    },
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await admin.end()
    },
  }
}

/**
 * Table `zeros` (id, d DATE, dt DATETIME) with zero dates, written with an empty sql_mode:
 * row 1 ordinary, row 2 '0000-00-00' and NULL, row 3 a zero month and a zero day.
 */
export async function createZeroDates(db: TestDatabase): Promise<void> {
  const conn = await db.admin.getConnection()
  try {
    await conn.query("SET SESSION sql_mode = ''")
    await conn.query('CREATE TABLE zeros (id INT NOT NULL PRIMARY KEY, d DATE, dt DATETIME)')
    await conn.query(
      "INSERT INTO zeros VALUES (1, '2024-01-01', '2024-01-01 00:00:00'), (2, '0000-00-00', NULL), (3, '2024-00-10', '2024-01-00 10:00:00')",
    )
  } finally {
    conn.release()
  }
}
