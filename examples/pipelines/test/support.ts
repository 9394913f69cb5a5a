// What the example tests share: `nvisy run <file>` as a user runs it from this folder, and
// throwaway databases on the local PostgreSQL and MySQL/MariaDB servers.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import mysql from 'mysql2/promise'
import pg from 'pg'

/** This folder: the example pipelines, their nvisy.config.json and node_modules. */
export const EXAMPLES = dirname(dirname(fileURLToPath(import.meta.url)))
/**
 * What `npx nvisy` runs here: the `nvisy` bin of the runtime installed in this folder, run with
 * this Node as the bin's shim does. Read from the package's `bin` field, not from
 * `node_modules/.bin`: in a fresh clone pnpm cannot link a workspace bin whose file is built
 * only after the install.
 */
const runtimeDir = join(EXAMPLES, 'node_modules', '@nvisy', 'runtime')
export const NVISY = join(
  runtimeDir,
  (JSON.parse(readFileSync(join(runtimeDir, 'package.json'), 'utf8')) as { bin: { nvisy: string } })
    .bin.nvisy,
)

export const POSTGRES_URL =
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
export const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'

export function reachable(service: string, url: string, defaultPort: number) {
  const { host, port } = hostPort(url, defaultPort)
  return serviceSkipReason(service, url.replace(/\/\/[^@/]*@/, '//***@'), () =>
    tcpReachable(host, port),
  )
}

export interface RunSummary {
  status: string
  stats?: { nodes: Record<string, { items: number; failed: number }>; refusedItems?: number }
  error?: { kind: string; message: string }
}

export interface CliRun {
  code: number | null
  summary: RunSummary | undefined
  stdout: string
  stderr: string
}

/** A scratch folder (the run's HOME and checkpoint file live there). */
export async function scratch(label: string) {
  const dir = await mkdtemp(join(tmpdir(), `nvisy-example-${label}-`))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * `nvisy run <file>` from this folder with only `env` (and PATH) set: the variables the
 * README lists for the example. The checkpoint file goes to `checkpoints` instead of
 * `.nvisy/` here; HOME is the scratch folder, so nothing of the user running the tests is read.
 */
export async function runExample(
  file: string,
  env: Record<string, string>,
  checkpoints: string,
  timeoutMs = 240_000,
): Promise<CliRun> {
  const child = spawn(process.execPath, [NVISY, 'run', file, '--checkpoints', checkpoints], {
    cwd: EXAMPLES,
    env: { PATH: process.env.PATH ?? '', HOME: dirname(checkpoints), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-200_000)
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('exit', (c) => resolve(c))
    child.once('error', reject)
  })
  clearTimeout(timer)
  let summary: RunSummary | undefined
  try {
    summary = JSON.parse(stdout) as RunSummary
  } catch {
    summary = undefined
  }
  return { code, summary, stdout, stderr }
}

/** A readable account of a run for assertion messages. */
export function describeRun(run: CliRun): string {
  return `exit ${run.code}; stdout ${run.stdout.slice(0, 3000)}; stderr tail ${run.stderr.slice(-3000)}`
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** A database of its own on the local PostgreSQL server, dropped by `drop()`. */
export class PgDatabase {
  readonly name: string
  readonly url: string
  readonly pool: pg.Pool

  private constructor(label: string) {
    this.name = `nvisy_example_${label}_${randomBytes(4).toString('hex')}`
    this.url = withDatabase(POSTGRES_URL, this.name)
    this.pool = new pg.Pool({ connectionString: this.url, max: 2 })
  }

  static async create(label: string): Promise<PgDatabase> {
    const database = new PgDatabase(label)
    const admin = new pg.Client({ connectionString: POSTGRES_URL })
    await admin.connect()
    try {
      await admin.query(`CREATE DATABASE "${database.name}"`)
    } finally {
      await admin.end()
    }
    return database
  }

  async drop(): Promise<void> {
    await this.pool.end().catch(() => {})
    const admin = new pg.Client({ connectionString: POSTGRES_URL })
    await admin.connect()
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`)
    } finally {
      await admin.end()
    }
  }

  /** md5 over every row's text (PostgreSQL's own `t::text`), ordered by `key`, and the count. */
  async digest(table: string, key = 'id'): Promise<{ digest: string; count: number }> {
    const { rows } = await this.pool.query(
      `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t."${key}"), '')) AS digest, count(*)::int AS count FROM "${table}" t`,
    )
    return rows[0]
  }

  /** Each column's declared type and NOT NULL, in order, and the primary key. */
  async shape(table: string): Promise<{ columns: string[]; primaryKey: string | undefined }> {
    const columns = await this.pool.query(
      `SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END AS c
       FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [`"${table}"`],
    )
    const key = await this.pool.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`,
      [`"${table}"`],
    )
    return { columns: columns.rows.map((r) => r.c), primaryKey: key.rows[0]?.def }
  }
}

/** A database of its own on the local MySQL/MariaDB server. */
export class MysqlDatabase {
  readonly name = `nvisy_example_${randomBytes(4).toString('hex')}`
  readonly url = withDatabase(MYSQL_URL, this.name)
  readonly pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2, dateStrings: true })

  static async create(): Promise<MysqlDatabase> {
    const database = new MysqlDatabase()
    await database.pool.query(`CREATE DATABASE \`${database.name}\` CHARACTER SET utf8mb4`)
    return database
  }

  async drop(): Promise<void> {
    await this.pool.query(`DROP DATABASE IF EXISTS \`${this.name}\``).catch(() => {})
    await this.pool.end()
  }
}
