// PostgreSQL helpers: a schema per test file, a seeded source table, and the md5 over all
// rows ordered by key that proves two tables hold exactly the same data.
import { randomBytes } from 'node:crypto'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import pg from 'pg'

export const POSTGRES_URL =
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const postgresAddress = hostPort(POSTGRES_URL, 5432)

export function postgresSkipReason() {
  return serviceSkipReason('PostgreSQL', POSTGRES_URL, () =>
    tcpReachable(postgresAddress.host, postgresAddress.port),
  )
}

/** The provider's connection for a pipeline node, optionally through a proxy port. */
export function postgresConnection(schema: string, via?: { host: string; port: number }) {
  const url = new URL(POSTGRES_URL)
  return {
    params: {
      host: via?.host ?? postgresAddress.host,
      port: via?.port ?? postgresAddress.port,
      database: url.pathname.slice(1) || 'postgres',
      schema,
      connectTimeoutMs: 3000,
    },
    credentials: {
      user: decodeURIComponent(url.username || 'postgres'),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    },
  }
}

export class TestSchema {
  readonly name = `nvisy_rel_${randomBytes(4).toString('hex')}`
  readonly pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 })

  async create() {
    await this.pool.query(`CREATE SCHEMA ${this.name}`)
  }

  async drop() {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.name} CASCADE`).catch(() => {})
    await this.pool.end()
  }

  /** A table with the usual awkward types: bigint key, numeric, microsecond timestamps, jsonb, text with quotes. */
  async createTable(table: string, options: { primaryKey?: boolean } = {}) {
    await this.pool.query(`CREATE TABLE ${this.name}.${table} (
      id bigint${options.primaryKey === false ? ' NOT NULL' : ' PRIMARY KEY'},
      name text NOT NULL,
      amount numeric(18, 6),
      at timestamptz,
      tags text[],
      doc jsonb
    )`)
  }

  async seed(table: string, from: number, to: number) {
    await this.pool.query(
      `INSERT INTO ${this.name}.${table}
       SELECT g,
              'row ' || g || ' "quoted" ' || md5(g::text),
              (g * 1.000001)::numeric(18, 6),
              timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1.000001 second',
              ARRAY['t' || (g % 7), NULL],
              jsonb_build_object('g', g, 'big', 9007199254740993 + g, 'nested', jsonb_build_object('x', g % 3))
       FROM generate_series($1::bigint, $2::bigint) AS g`,
      [from, to],
    )
  }

  async count(table: string): Promise<number> {
    const { rows } = await this.pool.query(`SELECT count(*)::int AS n FROM ${this.name}.${table}`)
    return rows[0].n as number
  }

  /** md5 over every row's text, ordered by key. */
  async md5(table: string): Promise<string> {
    const { rows } = await this.pool.query(
      `SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)) AS h FROM ${this.name}.${table} t`,
    )
    return rows[0].h as string
  }

  /** How many rows repeat a key (0 when every key is there once). */
  async duplicates(table: string): Promise<number> {
    const { rows } = await this.pool.query(
      `SELECT (count(*) - count(DISTINCT id))::int AS n FROM ${this.name}.${table}`,
    )
    return rows[0].n as number
  }

  /** Keys present in `a` and missing from `b` (first few), for a readable failure. */
  async missing(a: string, b: string, limit = 10): Promise<string[]> {
    const { rows } = await this.pool.query(
      `SELECT id::text FROM ${this.name}.${a} EXCEPT SELECT id::text FROM ${this.name}.${b} ORDER BY 1 LIMIT ${limit}`,
    )
    return rows.map((r) => r.id as string)
  }
}
