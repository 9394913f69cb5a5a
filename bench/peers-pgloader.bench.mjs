#!/usr/bin/env node
// Peer comparison: MySQL/MariaDB -> PostgreSQL through the Nvisy runtime (the `nvisy` CLI
// running a pipeline with @nvisy/provider-mysql as source and @nvisy/provider-postgres as
// sink in append/COPY mode) next to pgloader (Debian package, default settings), on the same
// table in the same run. Both copies are checked against the source: same row count and the
// same md5 over a text rendering of every row.
//
//   pnpm build && node bench/peers-pgloader.bench.mjs [--rows 1000000] [--batch 10000]
//     [--concurrency 2] [--rounds 1]
//
// Needs MariaDB/MySQL (NVISY_TEST_MYSQL_URL, default mysql://root@127.0.0.1:3306) with the
// Sequence engine (MariaDB; seeding uses seq_1_to_N), PostgreSQL (NVISY_TEST_POSTGRES_URL,
// default postgres://postgres@127.0.0.1:5432/test), the `mysql` and `psql` clients, and
// `pgloader` and `/usr/bin/time` (installed with apt-get when missing and running as root).
//
// Each side runs as its own process under `/usr/bin/time -v`: wall time from here, peak RSS
// and CPU time from time(1). With --rounds > 1 the sides alternate and the median round counts.
// Prints one JSON object last on stdout: rows/s and peak RSS per side, ratio = ours / pgloader.
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensurePackages, hasCommand, median, timedCommand } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
  },
})
const ROWS = Number(args.rows)
const BATCH = Number(args.batch)
const CONCURRENCY = Number(args.concurrency)
const ROUNDS = Math.max(1, Number(args.rounds))
if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error('--rows must be a positive integer')

const mysqlUrl = new URL(process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306')
const pgUrl = new URL(
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
)
const my = {
  host: mysqlUrl.hostname,
  port: Number(mysqlUrl.port || 3306),
  user: decodeURIComponent(mysqlUrl.username || 'root'),
  password: decodeURIComponent(mysqlUrl.password),
}
const pg = {
  host: pgUrl.hostname,
  port: Number(pgUrl.port || 5432),
  user: decodeURIComponent(pgUrl.username || 'postgres'),
  password: decodeURIComponent(pgUrl.password),
  database: pgUrl.pathname.slice(1) || 'test',
}
const suffix = randomBytes(4).toString('hex')
const database = `nvisy_peers_${suffix}` // MySQL database; pgloader names its schema after it
const oursSchema = `nvisy_peers_ours_${suffix}`
const work = join(os.tmpdir(), `nvisy-peers-pgloader-${suffix}`)
const log = (message) => process.stderr.write(`peers-pgloader: ${message}\n`)
const round = (n, d) => Math.round(n * 10 ** d) / 10 ** d

// ---- tools --------------------------------------------------------------------------------
ensurePackages(
  [
    { package: 'pgloader', present: () => hasCommand('pgloader') },
    { package: 'time', present: () => existsSync('/usr/bin/time') },
  ],
  log,
)
const cli = join(root, 'apps/runtime/dist/cli.js')
for (const file of [
  cli,
  join(root, 'packages/provider-mysql/dist/index.js'),
  join(root, 'packages/provider-postgres/dist/index.js'),
])
  if (!existsSync(file)) throw new Error(`${file} is missing: run pnpm build first`)

// ---- SQL through the command-line clients -------------------------------------------------
const mysqlArgs = ['-h', my.host, '-P', String(my.port), '-u', my.user, '--batch', '--raw', '-N']
const mysqlEnv = { ...process.env, ...(my.password ? { MYSQL_PWD: my.password } : {}) }
const pgEnv = {
  ...process.env,
  PGHOST: pg.host,
  PGPORT: String(pg.port),
  PGUSER: pg.user,
  PGDATABASE: pg.database,
  PGTZ: 'UTC',
  PGOPTIONS: '-c client_min_messages=warning',
  ...(pg.password ? { PGPASSWORD: pg.password } : {}),
}
const mysqlSql = (sql, db) =>
  execFileSync('mysql', [...mysqlArgs, ...(db ? [db] : []), '-e', sql], {
    env: mysqlEnv,
    encoding: 'utf8',
  }).trim()
const psql = (sql) =>
  execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: pgEnv,
    encoding: 'utf8',
  }).trim()

/** md5 and line count of a query's output, streamed (one rendered row per line). */
function hashQuery(command, commandArgs, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const hash = createHash('md5')
    let lines = 0
    let errors = ''
    child.stdout.on('data', (chunk) => {
      hash.update(chunk)
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
    })
    child.stderr.on('data', (c) => {
      errors += c
    })
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve({ rows: lines, md5: hash.digest('hex') })
        : reject(new Error(`${command} exited ${code}: ${errors.trim()}`)),
    )
  })
}

// ---- data ---------------------------------------------------------------------------------
const DDL = `CREATE TABLE items (
  id BIGINT NOT NULL PRIMARY KEY,
  account_id INT NOT NULL,
  quantity SMALLINT NOT NULL,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(255),
  note TEXT,
  amount DECIMAL(12,2) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  attrs JSON
) CHARACTER SET utf8mb4`
// JSON text is written in PostgreSQL's jsonb rendering (keys shortest first, ", " and ": ")
// so that jsonb, json and text targets can all be compared with the source byte for byte.
const SEED = (n) => `INSERT INTO items
SELECT seq, seq % 1000, seq % 50, CONCAT('customer ', seq),
  IF(seq % 5 = 0, NULL, CONCAT('user', seq, '@example.com')),
  IF(seq % 10 = 0, NULL, CONCAT('Lorem ipsum dolor sit amet, consectetur adipiscing elit #', seq,
    IF(seq % 7 = 0, ' caf\u00e9 \u00fcber \u2713', ''))),
  (seq * 37 % 10000000) / 100,
  TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq * 7919 % 1000000) MICROSECOND,
  CONCAT('{"i": ', seq, ', "tags": ["a", "b"], "score": ', ROUND((seq % 97) / 10, 1), '}')
FROM seq_1_to_${n}`
// The same text rendering of a row on both servers.
const MYSQL_RENDER = `SELECT CONCAT_WS('|', id, account_id, quantity, name, COALESCE(email, '~'),
  COALESCE(note, '~'), amount, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'), COALESCE(attrs, '~'))
FROM items ORDER BY id`
// pgloader maps DATETIME to timestamptz (written and read here in UTC) and MariaDB's JSON
// (a LONGTEXT) to text; the table the runtime creates has timestamp(6) and json (or text).
// The casts make both render like the source.
const pgRender = (schema) => `SELECT concat_ws('|', id, account_id, quantity, name,
  coalesce(email, '~'), coalesce(note, '~'), amount::numeric(12,2),
  to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US'), coalesce(attrs::jsonb::text, '~'))
FROM "${schema}".items ORDER BY id`
// Like pgloader, the runtime creates the destination table: the postgres sink's
// `create: 'ifMissing'` builds it from the MySQL source's described columns (the type
// mapping of the provider-postgres README); only the schema is made here.
const PG_SCHEMA = (schema) => `CREATE SCHEMA "${schema}"`

// ---- one side under /usr/bin/time -v -----------------------------------------------------
function timed(name, command, commandArgs, env) {
  return timedCommand(name, command, commandArgs, { env, cwd: work })
}

function runPgloader() {
  psql(`DROP SCHEMA IF EXISTS "${database}" CASCADE`)
  const auth = (u) => (u.password ? `${u.user}:${encodeURIComponent(u.password)}` : u.user)
  return timed(
    'pgloader',
    'pgloader',
    [
      `mysql://${auth(my)}@${my.host}:${my.port}/${database}`,
      `postgresql://${auth(pg)}@${pg.host}:${pg.port}/${pg.database}`,
    ],
    process.env,
  )
}

function runOurs() {
  psql(`DROP SCHEMA IF EXISTS "${oursSchema}" CASCADE`)
  psql(PG_SCHEMA(oursSchema))
  return timed(
    'ours',
    process.execPath,
    [
      // Node flags for our side alone, e.g. NVISY_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'
      ...(process.env.NVISY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      cli,
      'run',
      join(work, 'pipeline.json'),
      '--no-resume',
      '--checkpoints',
      'checkpoints.json',
    ],
    {
      ...process.env,
      NVISY_BENCH_MYSQL_PASSWORD: my.password,
      NVISY_BENCH_PG_PASSWORD: pg.password,
    },
  )
}

// The runtime finds provider packages by name from the config file's directory, as an
// installation would have them: node_modules links to the built workspace packages.
function writeRuntimeFiles() {
  mkdirSync(join(work, 'node_modules/@nvisy'), { recursive: true })
  for (const dir of ['provider-mysql', 'provider-postgres'])
    symlinkSync(join(root, 'packages', dir), join(work, 'node_modules/@nvisy', dir), 'dir')
  writeFileSync(
    join(work, 'nvisy.config.json'),
    JSON.stringify({ providers: ['@nvisy/provider-mysql', '@nvisy/provider-postgres'] }),
  )
  const pipeline = {
    id: 'peers-mysql-to-postgres',
    nodes: [
      {
        id: 'mysql',
        role: 'source',
        provider: 'mysql',
        connection: {
          params: { host: my.host, port: my.port, database },
          credentials: {
            user: my.user,
            ...(my.password ? { password: { $env: 'NVISY_BENCH_MYSQL_PASSWORD' } } : {}),
          },
        },
        stream: { table: 'items' },
      },
      {
        id: 'postgres',
        role: 'sink',
        provider: 'postgres',
        connection: {
          params: { host: pg.host, port: pg.port, database: pg.database, schema: oursSchema },
          credentials: {
            user: pg.user,
            ...(pg.password ? { password: { $env: 'NVISY_BENCH_PG_PASSWORD' } } : {}),
          },
        },
        stream: { table: 'items', mode: 'append', create: 'ifMissing' },
        batch: { maxItems: BATCH },
        concurrency: CONCURRENCY,
      },
    ],
    edges: [{ from: 'mysql', to: 'postgres' }],
    options: { checkpointEveryItems: 100_000 },
  }
  writeFileSync(join(work, 'pipeline.json'), JSON.stringify(pipeline, null, 2))
}

async function verify(name, schema, expected) {
  const got = await hashQuery('psql', ['-X', '-At', '-c', pgRender(schema)], pgEnv)
  if (got.rows !== expected.rows || got.md5 !== expected.md5)
    throw new Error(
      `${name} copy differs from the source: ${got.rows} rows md5 ${got.md5}, expected ${expected.rows} rows md5 ${expected.md5}`,
    )
  return got
}

function reportedSeconds(name, output) {
  if (name === 'pgloader') {
    // e.g. "0.964s", "1m12.345s"
    const m = /Total import time.*?\s(?:(\d+)h)?(?:(\d+)m)?([0-9.]+)s\s*$/m.exec(output)
    return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]) : undefined
  }
  const all = [...output.matchAll(/"durationMs": ?(\d+)/g)]
  return all.length ? Number(all.at(-1)[1]) / 1000 : undefined
}

// ---- run ----------------------------------------------------------------------------------
mkdirSync(work, { recursive: true })
let failed = false
try {
  mysqlSql(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`)
  mysqlSql(DDL, database)
  let t = Date.now()
  mysqlSql(SEED(ROWS), database)
  mysqlSql('ANALYZE TABLE items', database)
  log(`seeded ${ROWS} rows in ${((Date.now() - t) / 1000).toFixed(1)}s`)
  t = Date.now()
  const source = await hashQuery('mysql', [...mysqlArgs, database, '-e', MYSQL_RENDER], mysqlEnv)
  const sourceBytes = Number(
    mysqlSql(
      'SELECT SUM(LENGTH(id) + LENGTH(account_id) + LENGTH(quantity) + LENGTH(name) + COALESCE(LENGTH(email), 0) + COALESCE(LENGTH(note), 0) + LENGTH(amount) + 26 + COALESCE(LENGTH(attrs), 0)) FROM items',
      database,
    ),
  )
  if (source.rows !== ROWS) throw new Error(`seeded ${source.rows} rows, expected ${ROWS}`)
  log(`source md5 ${source.md5} (${((Date.now() - t) / 1000).toFixed(1)}s)`)
  writeRuntimeFiles()

  const rounds = []
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['pgloader', 'ours'] : ['ours', 'pgloader']
    const measured = {}
    for (const name of order) {
      const result = name === 'pgloader' ? await runPgloader() : await runOurs()
      await verify(name, name === 'pgloader' ? database : oursSchema, source)
      measured[name] = {
        seconds: round(result.seconds, 2),
        rowsPerSecond: Math.round(ROWS / result.seconds),
        mbPerSecond: round(sourceBytes / 1e6 / result.seconds, 1),
        peakRssMB: Math.round(result.peakRssKb / 1024),
        cpuSeconds: round(result.cpuSeconds, 2),
        rowsPerCpuSecond: Math.round(ROWS / result.cpuSeconds),
        // The tool's own timing, without process start-up: pgloader's "Total import time",
        // the runtime's run summary durationMs.
        reportedSeconds: reportedSeconds(name, result.output),
      }
      log(`round ${r + 1} ${name}: ${JSON.stringify(measured[name])} (copy verified)`)
    }
    measured.ratio = round(measured.ours.rowsPerSecond / measured.pgloader.rowsPerSecond, 3)
    rounds.push(measured)
  }
  // The median ratio over the rounds; the sides shown are from the round closest to it.
  const ratio = round(median(rounds.map((m) => m.ratio)), 3)
  const chosen = rounds.reduce((a, b) =>
    Math.abs(b.ratio - ratio) < Math.abs(a.ratio - ratio) ? b : a,
  )
  const typesOf = (schema) =>
    psql(
      `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = 'items'`,
    )
  const pgTypes = typesOf(database)
  const oursTypes = typesOf(oursSchema)
  const report = {
    benchmark: 'mysql-to-postgres copy: nvisy runtime vs pgloader',
    data: {
      rows: ROWS,
      sourceMB: round(sourceBytes / 1e6, 1),
      columns: 'bigint pk, int, smallint, varchar x2, text, decimal(12,2), datetime(6), json',
      verified: `row count and md5 over every row equal to the source (${source.md5})`,
    },
    settings: {
      ours: `nvisy run: mysql source -> postgres sink, append (COPY), create: ifMissing (the sink creates the table), batch ${BATCH}, concurrency ${CONCURRENCY}`,
      oursTypes,
      pgloader: 'pgloader defaults (creates the table, COPY, indexes after the load)',
      pgloaderTypes: pgTypes,
    },
    loadAverage: os.loadavg().map((l) => round(l, 1)),
    ours: chosen.ours,
    pgloader: chosen.pgloader,
    ratio,
    rounds: ROUNDS > 1 ? rounds : undefined,
  }
  console.log(JSON.stringify(report))
  log(
    `ours ${chosen.ours.rowsPerSecond} rows/s (${chosen.ours.peakRssMB} MB), pgloader ${chosen.pgloader.rowsPerSecond} rows/s (${chosen.pgloader.peakRssMB} MB): ratio ${ratio}`,
  )
} catch (error) {
  failed = true
  log(`FAILED: ${error.message}`)
} finally {
  if (!args.keep) {
    try {
      mysqlSql(`DROP DATABASE IF EXISTS \`${database}\``)
      psql(
        `DROP SCHEMA IF EXISTS "${database}" CASCADE; DROP SCHEMA IF EXISTS "${oursSchema}" CASCADE`,
      )
    } catch (error) {
      log(`cleanup: ${error.message}`)
    }
    rmSync(work, { recursive: true, force: true })
  } else log(`kept ${database}, ${oursSchema}, ${work}`)
}
process.exit(failed ? 1 : 0)
