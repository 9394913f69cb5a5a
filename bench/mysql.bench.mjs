#!/usr/bin/env node
// MySQL/MariaDB provider benchmark: read and write N rows of a realistic table through
// @nvisy/provider-mysql (built dist/) next to bare mysql2 (a query stream, and a
// 1000-row multi-row INSERT loop) in the same run. Prints one JSON object on stdout.
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/provider-mysql build
//   node bench/mysql.bench.mjs [--rows 1000000]
//
// Server: NVISY_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test). The bench
// creates a database nvisy_bench_<random> and drops it at the end.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '1000000' } } })
const ROWS = Number(args.rows)
if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error('--rows must be a positive integer')

const require = createRequire(new URL('../packages/provider-mysql/package.json', import.meta.url))
const mysql = require('mysql2')
const mysqlPromise = require('mysql2/promise')
const { mysqlProvider, EXACT_VALUE_OPTIONS } = await import(
  '../packages/provider-mysql/dist/index.js'
)
const { tagged } = await import('../packages/provider-core/dist/index.js')

const url = new URL(process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test')
const server = {
  host: url.hostname,
  port: url.port ? Number(url.port) : 3306,
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password),
}
const database = `nvisy_bench_${randomBytes(4).toString('hex')}`
const BATCH = 1000

// --- peak RSS per phase --------------------------------------------------------------
let peak = 0
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss)
}, 20)
sampler.unref()
async function phase(name, bytes, fn) {
  globalThis.gc?.()
  peak = process.memoryUsage().rss
  const started = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  const rows = await fn()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  peak = Math.max(peak, process.memoryUsage().rss)
  const result = {
    rows,
    seconds: round(seconds, 3),
    rowsPerSecond: Math.round(rows / seconds),
    mbPerSecond: round(bytes / 1e6 / seconds, 2),
    // CPU time of this process (user + system) per row: less sensitive than wall time to
    // other load on the machine.
    cpuMicrosPerRow: round((cpu.user + cpu.system) / rows, 2),
    peakRssMb: round(peak / 1024 / 1024, 1),
  }
  process.stderr.write(`${name}: ${JSON.stringify(result)}\n`)
  return result
}
const round = (n, d) => Math.round(n * 10 ** d) / 10 ** d

// --- data ----------------------------------------------------------------------------
const DDL = (table) => `CREATE TABLE \`${table}\` (
  id BIGINT NOT NULL PRIMARY KEY,
  account_id INT NOT NULL,
  name VARCHAR(100) NOT NULL,
  note TEXT,
  amount DECIMAL(12,2) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  attrs JSON
) CHARACTER SET utf8mb4`
const COLUMNS = ['id', 'account_id', 'name', 'note', 'amount', 'created_at', 'updated_at', 'attrs']
const NOTE = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod'
const base = Date.UTC(2024, 0, 1)
function rowText(i) {
  const created = new Date(base + i * 1000).toISOString().replace('T', ' ').replace('Z', '')
  return [
    i,
    i % 1000,
    `customer ${i}`,
    i % 10 === 0 ? null : `${NOTE} #${i}`,
    `${Math.floor((i * 37) % 10000000) / 100}`,
    `${created}${String(i % 1000).padStart(3, '0')}`,
    `${created}123`,
    `{"i": ${i}, "tags": ["a", "b"], "score": ${(i % 97) / 10}}`,
  ]
}
function rowRecord(i) {
  const t = rowText(i)
  return {
    kind: 'record',
    values: {
      id: BigInt(i),
      account_id: t[1],
      name: t[2],
      note: t[3],
      amount: tagged('decimal', t[4]),
      created_at: tagged('timestamp', t[5].replace(' ', 'T')),
      updated_at: tagged('timestamptz', `${t[6].replace(' ', 'T')}Z`),
      attrs: tagged('json', t[7]),
    },
  }
}
function* batches(make) {
  for (let from = 1; from <= ROWS; from += BATCH) {
    const batch = []
    for (let i = from; i < Math.min(from + BATCH, ROWS + 1); i++) batch.push(make(i))
    yield batch
  }
}

// --- run -----------------------------------------------------------------------------
const admin = await mysqlPromise.createConnection(server)
await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`)
await admin.query(`USE \`${database}\``)
await admin.query(DDL('bare_dst'))
await admin.query(DDL('provider_dst'))
const session = async (c) => c.query(`SET SESSION time_zone = '+00:00'`)

let output
try {
  // Payload size: the text of every value, the same for all four phases.
  let bytes = 0
  for (let i = 1; i <= ROWS; i++)
    for (const v of rowText(i)) bytes += v === null ? 0 : String(v).length

  const bareConn = await mysqlPromise.createConnection({
    ...server,
    database,
    ...EXACT_VALUE_OPTIONS,
  })
  await session(bareConn)
  const bareWrite = await phase('bare write', bytes, async () => {
    let n = 0
    for (const batch of batches(rowText)) {
      await bareConn.query('START TRANSACTION')
      await bareConn.query(`INSERT INTO bare_dst (${COLUMNS.join(', ')}) VALUES ?`, [batch])
      await bareConn.query('COMMIT')
      n += batch.length
    }
    return n
  })
  await bareConn.end()

  const connection = await mysqlProvider.connect({
    credentials: { user: server.user, ...(server.password ? { password: server.password } : {}) },
    params: { host: server.host, port: server.port, database, poolSize: 4 },
  })
  const signal = new AbortController().signal
  const providerWrite = await phase('provider write', bytes, async () => {
    let n = 0
    for (const batch of batches(rowRecord)) {
      const result = await connection.write({ table: 'provider_dst' }, batch, { signal })
      if (result.failed.length > 0) throw result.failed[0].error
      n += result.written
    }
    return n
  })

  const [[check]] = await admin.query(
    `SELECT (SELECT COUNT(*) FROM bare_dst) AS bare, (SELECT COUNT(*) FROM provider_dst) AS provider,
       (SELECT MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', ${COLUMNS.join(', ')})) ORDER BY id)) FROM bare_dst WHERE id <= 10000) AS h1,
       (SELECT MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', ${COLUMNS.join(', ')})) ORDER BY id)) FROM provider_dst WHERE id <= 10000) AS h2`,
  )
  if (Number(check.bare) !== ROWS || Number(check.provider) !== ROWS || check.h1 !== check.h2) {
    throw new Error(`written tables differ: ${JSON.stringify(check)}`)
  }

  const streamConn = mysql.createConnection({ ...server, database, ...EXACT_VALUE_OPTIONS })
  await new Promise((resolve, reject) =>
    streamConn.query(`SET SESSION time_zone = '+00:00'`, (e) => (e ? reject(e) : resolve())),
  )
  const bareRead = await phase('bare read', bytes, async () => {
    let n = 0
    const stream = streamConn
      .query('SELECT * FROM bare_dst ORDER BY id')
      .stream({ highWaterMark: 1000 })
    for await (const _row of stream) n++
    return n
  })
  await new Promise((resolve) => streamConn.end(resolve))

  const providerRead = await phase('provider read', bytes, async () => {
    let n = 0
    for await (const _item of connection.read({ table: 'bare_dst' }, { signal })) n++
    return n
  })
  await connection.close()

  output = {
    benchmark: 'mysql',
    server: (await admin.query('SELECT VERSION() AS v'))[0][0].v,
    node: process.version,
    rows: ROWS,
    payloadMb: round(bytes / 1e6, 1),
    read: {
      provider: providerRead,
      bare: bareRead,
      ratio: round(providerRead.rowsPerSecond / bareRead.rowsPerSecond, 2),
    },
    write: {
      provider: providerWrite,
      bare: bareWrite,
      ratio: round(providerWrite.rowsPerSecond / bareWrite.rowsPerSecond, 2),
    },
    targets: { ratio: 0.5, peakRssMb: 256 },
  }
  output.pass =
    output.read.ratio >= 0.5 &&
    output.write.ratio >= 0.5 &&
    providerRead.peakRssMb < 256 &&
    providerWrite.peakRssMb < 256
} finally {
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await admin.end()
}
process.stdout.write(`${JSON.stringify(output, null, 2)}\n`)
