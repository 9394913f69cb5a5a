// Reads as PostgreSQL COPY text made from MySQL's text protocol bytes (mysql-copy-text.ts):
// the text is judged against what MariaDB itself prints for each value (CAST ... AS CHAR),
// escaped here by a separate, naive implementation of COPY's text rules; contexts against
// the row-by-row read's; resumes from any row's context; zero dates as the row-by-row read
// treats them; offers only for columns whose text PostgreSQL reads as the same value.
import {
  type GuardedConnection,
  isProviderError,
  type ReadItem,
  type RecordData,
} from '@nvisy/provider-core'
import { collect } from '@nvisy/provider-testkit'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  createZeroDates,
  mysqlSkipReason,
  type TestDatabase,
  testServerOptions,
} from './__fixtures__/mysql-test-db.js'
import { EXACT_VALUE_OPTIONS } from './mysql-client.js'
import { POSTGRES_COPY_TEXT } from './mysql-copy-text.js'
import { createMysqlProvider, mysqlProvider } from './mysql-provider.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal

const DDL = `CREATE TABLE src (
  id BIGINT NOT NULL PRIMARY KEY,
  i8 TINYINT, u32 INT UNSIGNED, u64 BIGINT UNSIGNED, dec65 DECIMAL(65,30),
  vc VARCHAR(100), tx MEDIUMTEXT, ch CHAR(5), j JSON,
  d DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`
const COLUMNS = ['id', 'i8', 'u64', 'u32', 'dec65', 'vc', 'tx', 'ch', 'j', 'd', 'dtm', 'ts']

/** Every COPY-special byte, \N as text, NULL next to '', long fields (2- and 3-byte lengths). */
const TRAPS = `INSERT INTO src VALUES
 (1, -128, 4294967295, 18446744073709551615,
  '-99999999999999999999999999999999999.999999999999999999999999999999',
  'tab\\there new\\nline cr\\rx back\\\\slash', '\\\\N', 'a b', '{"a": "x\\\\ny \\\\\\\\ \\\\t"}',
  '1000-01-01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999'),
 (2, 0, 0, 0, '0.000000000000000000000000000001', '', '', '', '[]',
  '2024-02-29', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 127, 1, 9223372036854775808, '1', 'héllo 😀 ☃', REPEAT('ab\\tc', 600), '😀', '"s"',
  '2000-01-01', '2024-01-01 00:00:00.000001', '2024-06-01 12:00:00.500000'),
 (5, 1, 2, 3, '4.5', '\\\\', REPEAT('x\\\\y\\n', 30000), ' ', '{"k": "\\\\u0000"}',
  '2000-01-02', '2024-01-01 00:00:00', NULL)`
const GENERATED = 3000
const SEED = `INSERT INTO src SELECT seq + 100, seq % 100, seq * 1000, seq * 3000000000000007,
  CONCAT(IF(seq % 2, '-', ''), seq, '.', LPAD(seq * 37 % 1000000, 30, '0')),
  CONCAT('r', seq, IF(seq % 3 = 0, '\\t', ''), IF(seq % 5 = 0, '\\\\', '')), REPEAT('t', seq % 40),
  IF(seq % 4 = 0, NULL, 'c'), JSON_OBJECT('k', seq), '2024-01-01' + INTERVAL seq DAY,
  TIMESTAMP('2020-01-01') + INTERVAL seq * 3607 SECOND + INTERVAL seq MICROSECOND,
  IF(seq % 11 = 0, NULL, TIMESTAMP('2001-01-01') + INTERVAL seq SECOND)
  FROM seq_1_to_${GENERATED}`

/** COPY text's escaping, written independently of the provider's byte loop. */
function copyField(value: string | null): string {
  if (value === null) return '\\N'
  return value
    .replaceAll('\\', '\\\\')
    .replaceAll('\t', '\\t')
    .replaceAll('\n', '\\n')
    .replaceAll('\r', '\\r')
}

type Item = ReadItem<{ columns: string[]; values: unknown[] }>

function wireOf(item: Item) {
  const wire = (item.data as RecordData).wire
  if (!wire) throw new Error('not a wire item')
  return wire
}

describe.skipIf(skip)('mysql source: rows as PostgreSQL COPY text', () => {
  let db: TestDatabase
  let connection: GuardedConnection
  /** The expected COPY line of each row, in key order, from the server's own text. */
  let lines: string[]

  const read = (
    stream: Record<string, unknown>,
    options: { after?: unknown; maxRows?: number; maxBytes?: number } = {},
  ) =>
    collect(
      connection.read(
        { table: 'src', columns: COLUMNS, pageSize: 700, ...stream },
        {
          signal: signal(),
          after: options.after,
          wire: {
            format: POSTGRES_COPY_TEXT,
            maxRows: options.maxRows ?? 400,
            maxBytes: options.maxBytes ?? 1 << 20,
          },
        },
      ),
    ) as Promise<Item[]>
  const text = (items: Item[]) =>
    items.map((item) => Buffer.from(wireOf(item).bytes!).toString('utf8')).join('')

  beforeAll(async () => {
    db = await createTestDatabase()
    connection = await mysqlProvider.connect(db.input())
    await db.sql(DDL)
    await db.sql(TRAPS)
    await db.sql(SEED)
    const printed = await db.admin.query({
      sql: `SELECT ${COLUMNS.map((c) => `CAST(\`${c}\` AS CHAR)`).join(', ')} FROM src ORDER BY id`,
      rowsAsArray: true,
    })
    lines = (printed[0] as (string | null)[][]).map(
      (row) => `${row.map((v) => copyField(v)).join('\t')}\n`,
    )
  })

  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  it('offers COPY text for integer, decimal, character, JSON and date-time columns', async () => {
    const offer = await connection.wireOffer(
      { table: 'src', columns: COLUMNS },
      POSTGRES_COPY_TEXT,
      { signal: signal() },
    )
    expect(offer).toMatchObject({ format: POSTGRES_COPY_TEXT, columns: COLUMNS })
    expect('schema' in offer && offer.schema.system).toBe('mysql')
  })

  it("yields each row as the server's own text with COPY's escapes, NULL as \\N, long fields whole", async () => {
    const items = await read({})
    expect(items.reduce((n, item) => n + wireOf(item).rows, 0)).toBe(lines.length)
    for (const item of items) {
      const wire = wireOf(item)
      expect(wire.format).toBe(POSTGRES_COPY_TEXT)
      expect(wire.columns).toEqual(COLUMNS)
      expect(wire.rows).toBeLessThanOrEqual(400)
      expect(wire.size).toBe(wire.bytes!.length)
      expect((item.data as RecordData).values).toEqual({})
    }
    const got = text(items)
    // The hostile rows first, compared line by line for a readable failure.
    expect(got.split('\n').slice(0, 5)).toEqual(lines.slice(0, 5).map((l) => l.slice(0, -1)))
    expect(got).toBe(lines.join(''))
  })

  it("each item carries its last row's context, the same as the row-by-row read gives that row", async () => {
    const items = await read({}, { maxRows: 333 })
    const rows = await collect(
      connection.read({ table: 'src', columns: COLUMNS, pageSize: 700 }, { signal: signal() }),
    )
    let seen = 0
    for (const item of items) {
      seen += wireOf(item).rows
      expect(item.context).toEqual(rows[seen - 1]!.context)
    }
    expect(seen).toBe(rows.length)
  })

  it('resumes from any context: an item boundary, or a row inside an item (a row-by-row checkpoint)', async () => {
    const items = await read({}, { maxRows: 250 })
    const third = items.slice(0, 3).reduce((n, item) => n + wireOf(item).rows, 0)
    expect(text(await read({}, { after: items[2]!.context, maxRows: 250 }))).toBe(
      lines.slice(third).join(''),
    )
    // A checkpoint taken row by row, in the middle of an item of this read.
    const rows = await collect(
      connection.read({ table: 'src', columns: COLUMNS, pageSize: 700 }, { signal: signal() }),
    )
    const middle = 1234
    expect(text(await read({}, { after: rows[middle]!.context, maxRows: 250 }))).toBe(
      lines.slice(middle + 1).join(''),
    )
  })

  it('cuts items at about maxBytes, after the row that crosses it', async () => {
    const items = await read({}, { maxRows: 1_000_000, maxBytes: 4096 })
    expect(text(items)).toBe(lines.join(''))
    for (const item of items) {
      const wire = wireOf(item)
      // An item ends with the row that crossed the bound.
      if (wire.rows > 1) {
        const withoutLast = Buffer.from(wire.bytes!).subarray(0, -1).lastIndexOf(0x0a)
        expect(withoutLast).toBeLessThan(4096)
      }
    }
    // The row of 150 kB ends the item it crossed the bound in: the next row starts a new one.
    const large = items.find((item) => wireOf(item).bytes!.length > 100_000)!
    const bytes = Buffer.from(wireOf(large).bytes!)
    expect(bytes.length - bytes.subarray(0, -1).lastIndexOf(0x0a)).toBeGreaterThan(100_000)
    expect(items.filter((item) => wireOf(item).bytes!.length > 100_000)).toHaveLength(1)
  })

  it('a consumer that stops early drops the half-read connection; the pool goes on working', async () => {
    for (let i = 0; i < 12; i++) {
      const iterator = connection
        .read(
          { table: 'src', columns: COLUMNS, pageSize: 3000 },
          {
            signal: signal(),
            wire: { format: POSTGRES_COPY_TEXT, maxRows: 10, maxBytes: 1 << 20 },
          },
        )
        [Symbol.asyncIterator]()
      expect((await iterator.next()).done).toBe(false)
      await iterator.return?.(undefined)
    }
    // More early returns than the pool has connections, and a whole read still works.
    expect(text(await read({}))).toBe(lines.join(''))
    const aborted = new AbortController()
    const iterator = connection
      .read(
        { table: 'src', columns: COLUMNS, pageSize: 3000 },
        {
          signal: aborted.signal,
          wire: { format: POSTGRES_COPY_TEXT, maxRows: 10, maxBytes: 1 << 20 },
        },
      )
      [Symbol.asyncIterator]()
    await iterator.next()
    aborted.abort()
    const error = await (async () => {
      for (;;) if ((await iterator.next()).done) return undefined
    })().catch((e) => e)
    expect(error).toBeDefined()
    expect(text(await read({}))).toBe(lines.join(''))
  })

  it('zero dates: a data error naming the column and row, as row by row; with zeroDates: "null", \\N', async () => {
    await createZeroDates(db)
    const error = await read({ table: 'zeros', columns: undefined }).catch((e) => e)
    expect(isProviderError(error) && error.kind).toBe('data')
    expect(error.message).toMatch(
      /column "d" holds a zero date \(its month or day is 00\) in the row with key \(id=2\)/,
    )
    const items = await read({ table: 'zeros', columns: undefined, zeroDates: 'null' })
    expect(text(items)).toBe('1\t2024-01-01\t2024-01-01 00:00:00\n2\t\\N\t\\N\n3\t\\N\t\\N\n')
  })

  it("refuses to read character data that does not arrive as UTF-8 (an injected pool's latin1), naming the column", async () => {
    const pool = mysql.createPool({
      ...testServerOptions(),
      database: db.name,
      connectionLimit: 1,
      charset: 'LATIN1_SWEDISH_CI',
      ...EXACT_VALUE_OPTIONS,
    })
    const latin = await createMysqlProvider({ pool }).connect(db.input())
    try {
      const error = await collect(
        latin.read(
          { table: 'src', columns: COLUMNS },
          {
            signal: signal(),
            wire: { format: POSTGRES_COPY_TEXT, maxRows: 10, maxBytes: 1 << 20 },
          },
        ),
      ).catch((e) => e)
      expect(isProviderError(error) && error.kind).toBe('config')
      expect(error.message).toMatch(
        /column "vc" arrives in the connection's character set latin1, not UTF-8/,
      )
    } finally {
      await latin.close()
      await pool.end()
    }
  })

  it('offers nothing for a column whose text PostgreSQL would read differently, naming it', async () => {
    await db.sql(
      'CREATE TABLE other (id INT PRIMARY KEY, f FLOAT, b BIT(3), flag TINYINT(1), bin VARBINARY(4), tm TIME)',
    )
    for (const [columns, column] of [
      [['id', 'f'], 'f'],
      [['id', 'b'], 'b'],
      [['id', 'bin'], 'bin'],
      [['id', 'tm'], 'tm'],
    ] as const) {
      const offer = await connection.wireOffer({ table: 'other', columns }, POSTGRES_COPY_TEXT, {
        signal: signal(),
      })
      expect(offer).toEqual({ reason: expect.stringContaining(`column "${column}" is `) })
    }
    expect(
      await connection.wireOffer(
        { table: 'other', columns: ['id', 'flag'], tinyint1AsBoolean: true },
        POSTGRES_COPY_TEXT,
        { signal: signal() },
      ),
    ).toEqual({ reason: 'column "flag" is read as a boolean (tinyint1AsBoolean)' })
    // Without the boolean reading, TINYINT(1) is an integer like any other.
    expect(
      await connection.wireOffer({ table: 'other', columns: ['id', 'flag'] }, POSTGRES_COPY_TEXT, {
        signal: signal(),
      }),
    ).toMatchObject({ format: POSTGRES_COPY_TEXT })
  })
})
