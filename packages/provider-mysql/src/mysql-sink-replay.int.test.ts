// When the server refuses a row of a batch, the sink replays the batch in parts under savepoints,
// splitting a refused part in two until the refused rows stand alone: the other rows land
// exactly as they do when written on their own (judged by a digest MariaDB computes), in their
// order (the last row of a key repeated in a batch wins), with the batch's offset, and the
// replay costs about 2*log2(n) statements per bad row, not one per row (counted on the
// connection and by the server).
import {
  COLUMNS_WIRE,
  type Data,
  type GuardedConnection,
  type SqlValue,
  tagged,
  type WriteOptions,
} from '@nvisy/provider-core'
import mysql, { type Pool, type PoolConnection } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
  testServerOptions,
} from './__fixtures__/mysql-test-db.js'
import { EXACT_VALUE_OPTIONS } from './mysql-client.js'
import { createMysqlProvider } from './mysql-provider.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal

const COLUMNS = ['id', 'name', 'qty', 'amount', 'at', 'note']

const DDL = (table: string) => `CREATE TABLE \`${table}\` (
  id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, qty INT, amount DECIMAL(12,2),
  at DATETIME(6), note TEXT, CHECK (qty >= 0)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`

/** Row i of a batch; `key` is its id (a key repeats when the caller makes it). */
function goodRow(i: number, key = i): SqlValue[] {
  const seconds = String(i % 60).padStart(2, '0')
  return [
    key,
    `n${i}`,
    i % 97,
    tagged('decimal', `${i}.${String(i % 100).padStart(2, '0')}`),
    tagged('timestamp', `2024-01-01T10:00:${seconds}.${String(i).padStart(6, '0')}`),
    i % 5 === 0 ? null : `row ${i} 'quoted' ☃ \\ ${'x'.repeat(i % 40)}`,
  ]
}

/** Three ways the server refuses a row: too long (1406), a CHECK (4025), NULL into NOT NULL (1048). */
function badRow(i: number, which: number, key = i): SqlValue[] {
  const row = goodRow(i, key)
  if (which % 3 === 0) row[1] = 'a name longer than twenty characters'
  else if (which % 3 === 1) row[2] = -1
  else row[1] = null
  return row
}

/** A batch of `n` rows with the rows at `bad` refused by the server. */
function rowsWithBad(n: number, bad: readonly number[], key = (i: number) => i): SqlValue[][] {
  return Array.from({ length: n }, (_, i) => {
    const which = bad.indexOf(i)
    return which >= 0 ? badRow(i, which, key(i)) : goodRow(i, key(i))
  })
}

type Kind = 'records' | 'columns'

/** The rows as records, or as `nvisy-columns` items of at most `itemRows` rows each. */
function asBatch(kind: Kind, rows: readonly SqlValue[][], itemRows = 600): Data[] {
  if (kind === 'records')
    return rows.map((row) => ({
      kind: 'record',
      values: Object.fromEntries(COLUMNS.map((name, c) => [name, row[c]!])),
    }))
  const items: Data[] = []
  for (let start = 0; start < rows.length; start += itemRows) {
    const part = rows.slice(start, start + itemRows)
    items.push({
      kind: 'record',
      values: {},
      wire: {
        format: COLUMNS_WIRE,
        columns: COLUMNS,
        rows: part.length,
        values: COLUMNS.map((_, c) => part.map((row) => row[c]!)),
      },
    })
  }
  return items
}

/** How a failure names row `r` of the batch (columns: items of `itemRows` rows). */
function label(kind: Kind, r: number, itemRows = 600): string {
  return kind === 'records'
    ? `item ${r}`
    : `row ${r % itemRows} of item ${Math.floor(r / itemRows)}`
}

describe.skipIf(skip)('mysql sink: refused rows isolated by halves', () => {
  let db: TestDatabase
  let pool: Pool
  let connection: GuardedConnection
  /** Every statement the sink sent on the pool's one connection, in order. */
  const sent: string[] = []
  let onSent: ((sql: string) => void) | undefined

  beforeAll(async () => {
    db = await createTestDatabase()
    // One connection: the server's session counters are the sink's own.
    pool = mysql.createPool({
      ...testServerOptions(),
      database: db.name,
      connectionLimit: 1,
      ...EXACT_VALUE_OPTIONS,
    })
    const getConnection = pool.getConnection.bind(pool)
    pool.getConnection = async () => {
      const pooled: PoolConnection = await getConnection()
      const query = pooled.query.bind(pooled) as (...args: unknown[]) => Promise<unknown>
      ;(pooled as { query: unknown }).query = (sql: unknown, ...rest: unknown[]) => {
        const text = typeof sql === 'string' ? sql : String((sql as { sql: string }).sql)
        sent.push(text)
        onSent?.(text)
        return query(sql, ...rest)
      }
      return pooled
    }
    connection = await createMysqlProvider({ pool }).connect(db.input())
  })
  afterAll(async () => {
    await connection?.close()
    await pool?.end()
    await db?.drop()
  })

  /** The server's count of INSERT statements run by the pool's one session. */
  async function serverInserts(): Promise<number> {
    const [rows] = await pool.query("SHOW SESSION STATUS LIKE 'Com_insert'")
    return Number((rows as { Value: string }[])[0]!.Value)
  }

  /** Write, counting what the write sent: INSERTs into `table`, savepoints, all INSERTs by the server. */
  async function counted(
    table: string,
    batch: Data[],
    options: WriteOptions,
    mode: 'upsert' | 'append',
  ) {
    const before = await serverInserts()
    const from = sent.length
    const result = await connection.write({ table, mode }, batch, options)
    const statements = sent.slice(from)
    const server = (await serverInserts()) - before
    const into = `INSERT INTO \`${db.name}\`.\`${table}\``
    return {
      result,
      inserts: statements.filter((sql) => sql.startsWith(into)).length,
      allInserts: statements.filter((sql) => sql.startsWith('INSERT')).length,
      savepoints: statements.filter((sql) => sql.startsWith('SAVEPOINT')).length,
      server,
    }
  }

  /** MariaDB's digest of a table: MD5 over every row's exact text, in key order, and the count. */
  async function digest(table: string): Promise<{ md5: string; rows: number }> {
    const admin = await db.admin.getConnection()
    try {
      await admin.query('SET SESSION group_concat_max_len = 1073741824')
      const row = [
        'id',
        'HEX(name)',
        'qty',
        'CAST(amount AS CHAR)',
        'CAST(at AS CHAR)',
        'HEX(note)',
      ]
        .map((expr) => `COALESCE(${expr}, '\\\\N')`)
        .join(', ')
      const [rows] = await admin.query(
        `SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', ${row}) ORDER BY id SEPARATOR '\\n')) AS md5, COUNT(*) AS n FROM \`${table}\``,
      )
      const first = (rows as { md5: string; n: number }[])[0]!
      return { md5: first.md5, rows: Number(first.n) }
    } finally {
      admin.release()
    }
  }

  function options(kind: Kind, offset?: WriteOptions['offset']): WriteOptions {
    return {
      signal: signal(),
      ...(kind === 'columns' ? { wire: COLUMNS_WIRE } : {}),
      ...(offset ? { offset } : {}),
    }
  }

  const BAD = [0, 500, 999]
  /**
   * At most: each statement of the batch once more (the first attempt, and the replay of the good
   * ones), and 2 per bad row for each halving of its statement (of `rowsPerStatement` rows).
   */
  const logBound = (statements: number, bad: number, rowsPerStatement: number) =>
    statements + 2 * bad * Math.ceil(Math.log2(rowsPerStatement))

  for (const mode of ['upsert', 'append'] as const) {
    for (const kind of ['records', 'columns'] as const) {
      it(`${mode}, ${kind}: 3 bad rows in 1000 fail alone, the 997 others land exactly with the offset, in logarithmic statements`, async () => {
        const table = `halves_${mode}_${kind}`
        const alone = `alone_${mode}_${kind}`
        await db.sql(DDL(table))
        await db.sql(DDL(alone))
        if (mode === 'upsert') {
          // Rows already there, some overwritten by the batch (the bad row 0 leaves its own).
          for (const t of [table, alone])
            await db.sql(
              `INSERT INTO \`${t}\` (id, name, qty) SELECT seq * 7, CONCAT('old', seq), seq FROM seq_0_to_199`,
            )
        }
        const rows = rowsWithBad(1000, BAD)
        const offset = { key: `run-${table}`, context: { columns: ['id'], values: [999] } }
        const { result, inserts, allInserts, savepoints, server } = await counted(
          table,
          asBatch(kind, rows),
          options(kind, offset),
          mode,
        )

        expect(result.written).toBe(997)
        expect(result.failed.map((f) => f.error.message.replace(/: .*/s, ''))).toEqual(
          BAD.map((r) => label(kind, r)),
        )
        expect(result.failed.map((f) => f.index)).toEqual(
          BAD.map((r) => (kind === 'records' ? r : Math.floor(r / 600))),
        )
        expect(result.failed.map((f) => [f.error.kind, f.error.code])).toEqual([
          ['data', 'ER_DATA_TOO_LONG'],
          ['data', expect.any(String)], // MariaDB's CHECK (4025; mysql2 names it by MySQL's meaning)
          ['data', 'ER_BAD_NULL_ERROR'],
        ])
        expect(result.failed[1]!.error.message).toMatch(/CONSTRAINT `[^`]+` failed/)
        for (const f of result.failed) expect(f.error.message).not.toContain('a name longer')
        if (kind === 'columns')
          expect(result.failed.map((f) => f.data)).toEqual(
            BAD.map((r) => ({
              kind: 'record',
              values: Object.fromEntries(COLUMNS.map((name, c) => [name, rows[r]![c]!])),
            })),
          )
        expect(await connection.readOffset({ table }, offset.key)).toEqual(offset.context)

        // The same 997 rows written on their own (no refusal, one pass) give the same table.
        const good = rows.filter((_, i) => !BAD.includes(i))
        const reference = await connection.write(
          { table: alone, mode },
          asBatch(kind, good),
          options(kind),
        )
        expect(reference).toEqual({ written: 997, failed: [] })
        const expected = await digest(alone)
        const seeded = mode === 'upsert' ? Array.from({ length: 200 }, (_, seq) => seq * 7) : []
        const goodIds = good.map((row) => row[0] as number)
        expect(expected.rows).toBe(new Set([...goodIds, ...seeded]).size)
        expect(await digest(table)).toEqual(expected)

        // One 1000-row statement refused, then its halves: logarithmic, not one per row.
        expect(inserts).toBeLessThanOrEqual(logBound(1, BAD.length, 1000))
        expect(savepoints).toBeLessThanOrEqual(inserts)
        // The server ran exactly what the connection sent: these and the offset's upsert.
        expect(server).toBe(allInserts)
        expect(allInserts).toBe(inserts + 1)
      })
    }
  }

  it('the statements grow with log2 of the batch size, not with the batch size', async () => {
    const counts = new Map<number, number>()
    for (const n of [250, 1000, 4000]) {
      const table = `growth_${n}`
      await db.sql(DDL(table))
      const bad = [0, Math.floor(n / 2), n - 1]
      const { result, inserts } = await counted(
        table,
        asBatch('records', rowsWithBad(n, bad)),
        options('records'),
        'append',
      )
      expect(result.written).toBe(n - 3)
      expect(result.failed.map((f) => f.index)).toEqual(bad)
      const statements = Math.ceil(n / 1000)
      expect(inserts).toBeLessThanOrEqual(logBound(statements, 3, Math.min(n, 1000)) + 1)
      counts.set(n, inserts)
    }
    // Four times the rows: two more halvings for each of the 3 bad rows (one per row: +750).
    expect(counts.get(1000)! - counts.get(250)!).toBeLessThanOrEqual(2 * 3 * 2)
    // 4000 rows are 4 statements of 1000 (logBound above: 65 at most, one per row would be 4000).
    expect(counts.get(4000)!).toBeLessThan(counts.get(1000)! * 2)
  })

  for (const kind of ['records', 'columns'] as const) {
    it(`upsert, ${kind}: with keys repeated in the batch and bad rows, the last good row of each key wins`, async () => {
      const table = `last_wins_${kind}`
      const alone = `last_wins_alone_${kind}`
      await db.sql(DDL(table))
      await db.sql(DDL(alone))
      // 1000 rows over 100 keys (row i has key i % 100), in one statement. Row 999 is the last
      // of key 99 and is refused: row 899 must win. Rows 0 and 500 (key 0) are refused: row 900 wins.
      const bad = [0, 500, 999]
      const rows = rowsWithBad(1000, bad, (i) => i % 100)
      const result = await connection.write(
        { table, mode: 'upsert' },
        asBatch(kind, rows),
        options(kind),
      )
      expect(result.written).toBe(997)
      expect(result.failed.map((f) => f.error.message.replace(/: .*/s, ''))).toEqual(
        bad.map((r) => label(kind, r)),
      )
      const names = await db.sql(`SELECT id, name FROM \`${table}\` ORDER BY id`)
      expect(names).toHaveLength(100)
      expect(names.map((r) => r.name)).toEqual(
        Array.from({ length: 100 }, (_, key) => `n${key === 99 ? 899 : 900 + key}`),
      )
      const good = rows.filter((_, i) => !bad.includes(i))
      expect(
        await connection.write(
          { table: alone, mode: 'upsert' },
          asBatch(kind, good),
          options(kind),
        ),
      ).toEqual({ written: 997, failed: [] })
      expect(await digest(table)).toEqual(await digest(alone))
    })
  }

  it('anything but a refused row ends the replay: an abort during it fails the batch, nothing committed', async () => {
    const table = 'aborted_replay'
    await db.sql(DDL(table))
    const controller = new AbortController()
    onSent = (sql) => {
      if (sql.startsWith('SAVEPOINT')) controller.abort()
    }
    try {
      const error = await connection
        .write({ table, mode: 'append' }, asBatch('records', rowsWithBad(100, [50])), {
          signal: controller.signal,
          offset: { key: 'k', context: 1 },
        })
        .then(
          () => undefined,
          (caught: unknown) => caught,
        )
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).name).toMatch(/Abort/)
    } finally {
      onSent = undefined
    }
    expect(await db.sql(`SELECT id FROM \`${table}\``)).toEqual([])
    expect(await connection.readOffset({ table }, 'k')).toBeUndefined()
  })
})
