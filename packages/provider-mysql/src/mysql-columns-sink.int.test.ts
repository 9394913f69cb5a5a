// The sink takes `nvisy-columns` batches (rows held by column) in both modes: the same rows land
// as they do from records (judged by digests MariaDB computes itself), a refused row fails alone
// with its data while the rest of the batch lands with the offset, and a malformed batch is
// refused whole with an error naming the rule it breaks.
import {
  COLUMNS_WIRE,
  columnsRecord,
  type Data,
  type GuardedConnection,
  isProviderError,
  type ProviderError,
  type RecordData,
  type SqlValue,
  tagged,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import { collect as collectAll, readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { MysqlConnection } from './mysql-connection.js'
import { mysqlProvider } from './mysql-provider.js'
import type { MysqlCredentials, MysqlParams } from './mysql-schemas.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal

const TYPES_DDL = (name: string) => `CREATE TABLE \`${name}\` (
  id INT NOT NULL PRIMARY KEY,
  f FLOAT, d DOUBLE, i64 BIGINT, u64 BIGINT UNSIGNED, dec65 DECIMAL(65,30),
  b12 BIT(12), e ENUM('a','B','it''s'), s SET('x','y','z'), yr YEAR, j JSON,
  vc VARCHAR(100), tx TEXT, bin BINARY(4), vb VARBINARY(20),
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`

/** Hand-written traps, then generated rows (more than one INSERT of 1000 rows, several batches). */
const TRAP_ROWS = `INSERT INTO src VALUES
 (1, 1.1754943508222875e-38, 271/3e0, -9223372036854775808, 18446744073709551615,
  '-99999999999999999999999999999999999.999999999999999999999999999999', b'111111111111',
  'it''s', 'x,z', 2155, '{"b": 1, "a": 2, "b": 3,   "n": 1.10}', 'héllo 😀 \\'"\\\\', 'line\\nbreak\\0nul',
  X'00FF00FF', X'00', '1000-01-01', '-838:59:59.000000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999'),
 (2, 3.4028234663852886e38, 5e-324, 9223372036854775807, 0, '0.000000000000000000000000000001', b'0',
  'B', '', 1901, '[1, 2.50, "x"]', '', '', X'00000000', X'', '9999-12-31', '838:59:59.999999',
  '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000001'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

const GENERATED_ROWS = 2500
const GENERATED = `INSERT INTO src SELECT
  seq + 100, seq * 1.25e-3, seq / 7e0, seq * 1000000007 - 4611686018427387904, CAST(seq AS UNSIGNED) * 7378697629483820,
  CONCAT(IF(seq % 2, '-', ''), seq, '.', LPAD(seq * 37 % 1000000, 30, '0')), seq % 4096,
  ELT(1 + seq % 3, 'a', 'B', 'it''s'), ELT(1 + seq % 4, '', 'x', 'y,z', 'x,y,z'), 1901 + seq % 255,
  JSON_OBJECT('k', seq, 'a', JSON_ARRAY(seq, 'x')), CONCAT('r', seq, ' ☃ \\'"\\\\'), REPEAT('t', seq % 50),
  UNHEX(LPAD(HEX(seq), 8, '0')), UNHEX(HEX(seq * 13)), '2024-01-01' + INTERVAL seq DAY,
  SEC_TO_TIME(seq * 37.000001 - 40000), TIMESTAMP('2020-01-01') + INTERVAL seq * 3607 SECOND + INTERVAL seq MICROSECOND,
  IF(seq % 11 = 0, NULL, TIMESTAMP('2001-01-01') + INTERVAL seq * 86399 SECOND + INTERVAL seq * 3 MICROSECOND)
  FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_1_to_${GENERATED_ROWS}) AS generated`

/** How MariaDB prints each column exactly: bytes in hex, numbers and times as the server's text. */
const DIGEST = [
  'CAST(id AS CHAR)',
  'CAST(f + 0e0 AS CHAR)',
  'CAST(d AS CHAR)',
  'CAST(i64 AS CHAR)',
  'CAST(u64 AS CHAR)',
  'CAST(dec65 AS CHAR)',
  'HEX(b12)',
  ...['e', 's', 'j', 'vc', 'tx', 'bin', 'vb'].map((c) => `HEX(${c})`),
  'CAST(yr AS CHAR)',
  ...['dt', 'tm', 'dtm', 'ts'].map((c) => `CAST(${c} AS CHAR)`),
]

/** MariaDB's digest of a table of TYPES_DDL: md5 of every row's md5, in key order, and the count. */
async function digest(db: TestDatabase, table: string): Promise<{ md5: string; rows: number }> {
  const connection = await db.admin.getConnection()
  try {
    await connection.query('SET SESSION group_concat_max_len = 1073741824')
    const row = DIGEST.map((expr) => `COALESCE(${expr}, '\\\\N')`).join(', ')
    const [rows] = await connection.query(
      `SELECT MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', ${row})) ORDER BY id SEPARATOR '')) AS md5, COUNT(*) AS n FROM \`${table}\``,
    )
    const first = (rows as { md5: string; n: number }[])[0]!
    return { md5: first.md5, rows: Number(first.n) }
  } finally {
    connection.release()
  }
}

/** One `nvisy-columns` item of `rows` (each row's values in `columns` order). */
function columnsItem(columns: string[], rows: SqlValue[][]): Data {
  return {
    kind: 'record',
    values: {},
    wire: {
      format: COLUMNS_WIRE,
      columns,
      rows: rows.length,
      values: columns.map((_, c) => rows.map((row) => row[c]!)),
    },
  }
}

function records(columns: string[], rows: SqlValue[][]): Data[] {
  return rows.map((row) => ({
    kind: 'record',
    values: Object.fromEntries(columns.map((name, c) => [name, row[c]!])),
  }))
}

/** A guarded connection, or the provider's own (unguarded) one. */
interface Writer {
  write(stream: unknown, batch: readonly Data[], options: WriteOptions): Promise<WriteResult>
}

const byColumns = { signal: signal(), wire: COLUMNS_WIRE }

async function checksum(db: TestDatabase, table: string): Promise<string> {
  const [row] = await db.sql(`CHECKSUM TABLE \`${table}\``)
  return String(row.Checksum)
}

describe.skipIf(skip)('mysql sink: nvisy-columns batches', () => {
  let db: TestDatabase
  let connection: GuardedConnection

  beforeAll(async () => {
    db = await createTestDatabase()
    connection = await mysqlProvider.connect(db.input())
    await db.sql(TYPES_DDL('src'))
    await db.sql(TRAP_ROWS)
    await db.sql(GENERATED)
  })

  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  it('declares nvisy-columns on its sink', () => {
    expect(mysqlProvider.definition.sink?.wire).toEqual([COLUMNS_WIRE])
  })

  it('copies by column (append, upsert, several items per write) exactly as records do: the same MariaDB digest as the source', async () => {
    const total = 3 + GENERATED_ROWS
    const rowItems = await readAll(connection, { table: 'src' })
    expect(rowItems).toHaveLength(total)
    const columnItems = await collectAll(
      connection.read(
        { table: 'src' },
        { signal: signal(), wire: { format: COLUMNS_WIRE, maxRows: 1100, maxBytes: 1 << 30 } },
      ),
    )
    // Batches larger than one INSERT (1000 rows), and a last short one.
    expect(columnItems.map((i) => (i.data as RecordData).wire!.rows)).toEqual([1100, 1100, 303])
    for (const table of [
      'by_records',
      'by_columns_append',
      'by_columns_upsert',
      'by_columns_multi',
    ])
      await db.sql(TYPES_DDL(table))

    for (let start = 0; start < total; start += 1100) {
      const batch = rowItems.slice(start, start + 1100).map((i) => i.data)
      expect(await connection.write({ table: 'by_records' }, batch, { signal: signal() })).toEqual({
        written: batch.length,
        failed: [],
      })
    }
    for (const item of columnItems) {
      const rows = (item.data as RecordData).wire!.rows
      for (const stream of [
        { table: 'by_columns_append', mode: 'append' as const },
        { table: 'by_columns_upsert', mode: 'upsert' as const },
      ])
        expect(await connection.write(stream, [item.data], byColumns)).toEqual({
          written: rows,
          failed: [],
        })
    }
    // Several items in one write: their rows numbered across the items.
    expect(
      await connection.write(
        { table: 'by_columns_multi' },
        columnItems.map((i) => i.data),
        byColumns,
      ),
    ).toEqual({ written: total, failed: [] })

    const source = await digest(db, 'src')
    expect(source.rows).toBe(total)
    for (const table of [
      'by_records',
      'by_columns_append',
      'by_columns_upsert',
      'by_columns_multi',
    ])
      expect(await digest(db, table), table).toEqual(source)
    expect(await checksum(db, 'by_columns_append')).toBe(await checksum(db, 'src'))

    // A replay of the column batches in upsert mode changes nothing.
    for (const item of columnItems)
      await connection.write({ table: 'by_columns_upsert' }, [item.data], byColumns)
    expect(await digest(db, 'by_columns_upsert')).toEqual(source)

    // The digest sees one ulp of one FLOAT in one row: it is not a test that cannot fail.
    await db.sql('UPDATE by_columns_append SET f = 1.1754944909521339e-38 WHERE id = 1')
    expect((await digest(db, 'by_columns_append')).md5).not.toBe(source.md5)
  })

  it('upserts by column: a replay with changed values updates rows and adds none, as records do', async () => {
    for (const table of ['people_columns', 'people_records'])
      await db.sql(
        `CREATE TABLE ${table} (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL UNIQUE, age TINYINT UNSIGNED, born DATE)`,
      )
    const columns = ['id', 'email', 'age', 'born']
    const first: SqlValue[][] = [1, 2, 3, 4, 5].map((id) => [
      id,
      `p${id}@x.io`,
      20 + id,
      tagged('date', `199${id}-01-0${id}`),
    ])
    const second: SqlValue[][] = [
      [2, 'p2@x.io', 52, null],
      [4, 'p4@x.io', 54, tagged('date', '2000-02-29')],
      [6, 'p6@x.io', 26, null],
    ]
    for (const rows of [first, second]) {
      expect(
        await connection.write(
          { table: 'people_columns' },
          [columnsItem(columns, rows)],
          byColumns,
        ),
      ).toEqual({ written: rows.length, failed: [] })
      expect(
        await connection.write({ table: 'people_records' }, records(columns, rows), {
          signal: signal(),
        }),
      ).toEqual({ written: rows.length, failed: [] })
    }
    expect(
      await db.sql('SELECT id, age, CAST(born AS CHAR) born FROM people_columns ORDER BY id'),
    ).toEqual([
      { id: 1, age: 21, born: '1991-01-01' },
      { id: 2, age: 52, born: null },
      { id: 3, age: 23, born: '1993-01-03' },
      { id: 4, age: 54, born: '2000-02-29' },
      { id: 5, age: 25, born: '1995-01-05' },
      { id: 6, age: 26, born: null },
    ])
    expect(await checksum(db, 'people_columns')).toBe(await checksum(db, 'people_records'))

    // A row that collides with another row on a unique key other than the primary key fails
    // alone (not overwriting that row), reported for its item with the row as a record.
    const colliding: SqlValue[][] = [
      [7, 'p7@x.io', 27, null],
      [8, 'p1@x.io', 28, null],
      [1, 'p1@x.io', 99, null],
    ]
    const result = await connection.write(
      { table: 'people_columns' },
      [columnsItem(columns, colliding)],
      byColumns,
    )
    expect(result.written).toBe(2)
    expect(result.failed).toHaveLength(1)
    const [failure] = result.failed
    expect(failure!.index).toBe(0)
    expect(failure!.error.kind).toBe('data')
    expect(failure!.error.message).toMatch(
      /^row 1 of item 0: collides with another row on a unique key other than \(id\); not overwritten/,
    )
    expect(failure!.data).toEqual({
      kind: 'record',
      values: { id: 8, email: 'p1@x.io', age: 28, born: null },
    })
    expect(await db.sql('SELECT id, email, age FROM people_columns WHERE id IN (1, 7, 8)')).toEqual(
      [
        { id: 1, email: 'p1@x.io', age: 99 },
        { id: 7, email: 'p7@x.io', age: 27 },
      ],
    )
  })

  it('a refused row fails alone with its data; the rest of the batch lands with the offset, as records do', async () => {
    for (const table of ['strict_columns', 'strict_records'])
      await db.sql(
        `CREATE TABLE ${table} (id INT NOT NULL PRIMARY KEY, name VARCHAR(5) NOT NULL, qty INT, CHECK (qty >= 0))`,
      )
    const columns = ['id', 'name', 'qty']
    const secret = 'zz-top-secret-zz'
    const first: SqlValue[][] = [
      [0, 'ok0', 1],
      [1, secret, 1], // too long for VARCHAR(5): refused by the server (1406)
      [2, 'ok2', 2],
      [3, null, 3], // NULL into NOT NULL: refused by the server (1048)
      [4, 'ok4', 4],
    ]
    const second: SqlValue[][] = [
      [5, 'ok5', -1], // breaks the CHECK constraint (4025)
      [6, 'ok6', secret], // a string for an INT: refused by the encoder
      [7, 'ok7', 7],
    ]
    const offset = { key: 'run-1', context: { columns: ['id'], values: [7] } }
    const result = await connection.write(
      { table: 'strict_columns' },
      [columnsItem(columns, first), columnsItem(columns, second)],
      { ...byColumns, offset },
    )
    expect(result.written).toBe(4)
    expect(
      result.failed.map((f) => [f.index, f.error.kind, f.error.message.replace(/:.*/s, '')]),
    ).toEqual([
      [0, 'data', 'row 1 of item 0'],
      [0, 'data', 'row 3 of item 0'],
      [1, 'data', 'row 0 of item 1'],
      [1, 'data', 'row 1 of item 1'],
    ])
    expect(result.failed[0]!.error).toMatchObject({ code: 'ER_DATA_TOO_LONG' })
    expect(result.failed[1]!.error).toMatchObject({ code: 'ER_BAD_NULL_ERROR' })
    // (mysql2 names MariaDB's errno 4025 by MySQL's meaning of the number; the text is MariaDB's.)
    expect(result.failed[2]!.error.message).toMatch(/^row 0 of item 1: CONSTRAINT `[^`]+` failed/)
    expect(result.failed[3]!.error.message).toMatch(
      /^row 1 of item 1: column "qty" \(int\(11\)\): a string cannot be stored in an integer column/,
    )
    // Each failure carries its row, decoded, for the dead-letter sink; never a value in a message.
    expect(result.failed.map((f) => f.data)).toEqual([
      { kind: 'record', values: { id: 1, name: secret, qty: 1 } },
      { kind: 'record', values: { id: 3, name: null, qty: 3 } },
      { kind: 'record', values: { id: 5, name: 'ok5', qty: -1 } },
      { kind: 'record', values: { id: 6, name: 'ok6', qty: secret } },
    ])
    for (const f of result.failed) {
      expect(JSON.stringify(f.error.toJSON())).not.toContain(secret)
      expect(String(f.error.stack)).not.toContain(secret)
    }
    expect((await db.sql('SELECT id FROM strict_columns ORDER BY id')).map((r) => r.id)).toEqual([
      0, 2, 4, 7,
    ])
    expect(await connection.readOffset({ table: 'strict_columns' }, 'run-1')).toEqual(
      offset.context,
    )

    // The same rows as records: the same rows fail (by item) and the same rows land.
    const asRecords = await connection.write(
      { table: 'strict_records' },
      records(columns, [...first, ...second]),
      { signal: signal() },
    )
    expect(asRecords.written).toBe(4)
    expect(asRecords.failed.map((f) => [f.index, f.error.code])).toEqual(
      [1, 3, 5, 6].map((index, i) => [index, result.failed[i]!.error.code]),
    )
    const reason = (message: string) =>
      message.replace(/^(item \d+|row \d+ of item \d+): /, '').replace(/strict_\w+/, 'strict')
    expect(asRecords.failed.map((f) => reason(f.error.message))).toEqual(
      result.failed.map((f) => reason(f.error.message)),
    )
    expect(await checksum(db, 'strict_columns')).toBe(await checksum(db, 'strict_records'))
  })

  it('a batch whose every row is refused writes none and still commits its offset', async () => {
    await db.sql('CREATE TABLE all_refused (id INT NOT NULL PRIMARY KEY, n TINYINT)')
    const result = await connection.write(
      { table: 'all_refused', mode: 'append' },
      [columnsItem(['id', 'n'], [[1, 1000]])],
      { ...byColumns, offset: { key: 'k', context: 1 } },
    )
    expect(result.written).toBe(0)
    expect(result.failed.map((f) => [f.index, f.data])).toEqual([
      [0, { kind: 'record', values: { id: 1, n: 1000 } }],
    ])
    expect(await db.sql('SELECT * FROM all_refused')).toEqual([])
    expect(await connection.readOffset({ table: 'all_refused' }, 'k')).toBe(1)
  })

  describe('malformed batches are refused whole, naming the rule; nothing is written', () => {
    const stream = { table: 'shapes', mode: 'append' as const }
    const offset = { key: 'shapes', context: 1 }
    const refusal = async (
      batch: Data[],
      target: Writer = connection as Writer,
      wire: string = COLUMNS_WIRE,
    ): Promise<ProviderError> => {
      const error = await target
        .write(stream, batch, { signal: signal(), wire, offset })
        .catch((e: unknown) => e)
      expect(isProviderError(error), JSON.stringify(error)).toBe(true)
      expect(await db.sql('SELECT id FROM shapes')).toEqual([])
      expect(await connection.readOffset(stream, 'shapes')).toBeUndefined()
      return error as ProviderError
    }
    const item = (wire: Partial<NonNullable<RecordData['wire']>>): Data => {
      const base = columnsItem(['id', 'v'], [[1, 'a']]) as RecordData
      return { ...base, wire: { ...base.wire!, ...wire } }
    }
    let raw: MysqlConnection

    beforeAll(async () => {
      await db.sql('CREATE TABLE shapes (id INT NOT NULL PRIMARY KEY, v VARCHAR(10))')
      const input = db.input() as { credentials: MysqlCredentials; params: MysqlParams }
      raw = MysqlConnection.open(input)
    })
    afterAll(async () => {
      await raw?.close()
    })

    it('values and columns of different lengths', async () => {
      const error = await refusal([item({ values: [[1]] })])
      expect(error.kind).toBe('internal')
      expect(error.message).toBe(
        'malformed nvisy-columns batch: item 0 has 1 value arrays for 2 columns (wire.values must hold one array per column)',
      )
      expect(error.issues).toEqual([
        { path: '/batch/0/wire/values', rule: 'one value array per column', message: any() },
      ])
      expect((await refusal([item({ values: undefined })])).message).toMatch(
        /item 0 has 0 value arrays for 2 columns/,
      )
    })

    it('a column with more or fewer values than rows', async () => {
      const error = await refusal([item({ values: [[1], []] })])
      expect(error.kind).toBe('internal')
      expect(error.message).toMatch(
        /item 0: column "v" holds 0 values for 1 rows \(each column must hold wire.rows values\)/,
      )
      expect(error.issues?.[0]).toMatchObject({
        path: '/batch/0/wire/values/1',
        rule: 'one value per row',
      })
      expect((await refusal([item({ rows: 2 })])).message).toMatch(
        /column "id" holds 1 values for 2 rows/,
      )
    })

    it('items of one batch naming different columns', async () => {
      const other = columnsItem(['id', 'V'], [[2, 'b']])
      const error = await refusal([item({}), other])
      expect(error.kind).toBe('internal')
      expect(error.message).toMatch(
        /item 1 names the columns \(id, V\) and item 0 \(id, v\); every item of a batch must name the same columns/,
      )
      expect(error.issues?.[0]).toMatchObject({ rule: 'same columns' })
    })

    it('a column named twice, rows without columns, a row count that is not one', async () => {
      expect((await refusal([columnsItem(['id', 'id'], [[1, 1]])])).message).toMatch(
        /item 0 names the column "id" twice/,
      )
      expect(
        (
          await refusal([
            {
              kind: 'record',
              values: {},
              wire: { format: COLUMNS_WIRE, columns: [], rows: 1, values: [] },
            },
          ])
        ).message,
      ).toMatch(/item 0 holds 1 rows but names no columns/)
      expect((await refusal([item({ rows: 1.5 })])).issues?.[0]).toMatchObject({ rule: 'rows' })
    })

    it('a column the table lacks, or two names of one column, is a config error', async () => {
      const unknown = await refusal([columnsItem(['id', 'nope'], [[1, 'a']])])
      expect(unknown.kind).toBe('config')
      expect(unknown.message).toMatch(/column "nope" does not exist in ".*\.shapes"/)
      const twice = await refusal([columnsItem(['id', 'ID'], [[1, 2]])])
      expect(twice.kind).toBe('config')
      expect(twice.message).toMatch(
        /the names "id" and "ID" are both column "id" of ".*\.shapes" \(MySQL column names are not case-sensitive\)/,
      )
    })

    it('an item that is not nvisy-columns rows in a column write, or a format the sink does not write (unguarded)', async () => {
      // The guard reports such items alone before the sink sees them; the sink refuses them too.
      const decoded = await refusal([item({}), { kind: 'record', values: { id: 2 } }], raw)
      expect(decoded.kind).toBe('internal')
      expect(decoded.message).toMatch(
        /item 1 is a decoded record; every item of the write must hold nvisy-columns rows/,
      )
      expect(decoded.issues?.[0]).toMatchObject({ path: '/batch/1/wire/format', rule: 'format' })
      expect((await refusal([item({ format: 'postgresql-copy-text' })], raw)).message).toMatch(
        /item 0 holds "postgresql-copy-text" rows; every item of the write must hold/,
      )
      const format = await refusal([item({})], raw, 'postgresql-copy-text')
      expect(format.kind).toBe('config')
      expect(format.message).toMatch(
        /this sink writes decoded records or nvisy-columns batches, not "postgresql-copy-text" rows/,
      )
      // And a records write refuses a column item alone.
      const mixed = await raw.write(stream, [item({}), { kind: 'record', values: { id: 3 } }], {
        signal: signal(),
      })
      expect(mixed.written).toBe(1)
      expect(mixed.failed.map((f) => [f.index, f.error.kind, f.error.message])).toEqual([
        [0, 'data', 'item 0 holds "nvisy-columns" rows; this write takes decoded records'],
      ])
      await db.sql('DELETE FROM shapes')
    })
  })

  it('accepts an nvisy-columns offer for a table that has every offered column, and says why not', async () => {
    const offer = await connection.wireOffer({ table: 'src' }, COLUMNS_WIRE)
    if ('reason' in offer) throw new Error(offer.reason)
    expect(await connection.acceptWire({ table: 'by_records' }, offer)).toEqual({ accepted: true })
    await db.sql('CREATE TABLE narrow_dest (id INT PRIMARY KEY, F FLOAT)')
    expect(
      await connection.acceptWire({ table: 'narrow_dest' }, { ...offer, columns: ['id', 'f'] }),
    ).toEqual({ accepted: true })
    expect(await connection.acceptWire({ table: 'narrow_dest' }, offer)).toEqual({
      accepted: false,
      reason: expect.stringMatching(/^column "d" does not exist in ".*\.narrow_dest"$/),
    })
    await db.sql('CREATE VIEW src_view AS SELECT * FROM src')
    expect(await connection.acceptWire({ table: 'src_view' }, offer)).toEqual({
      accepted: false,
      reason: expect.stringMatching(/src_view" is a view$/),
    })
  })

  it('columnsRecord of a refused row equals the record a row-by-row read gives', async () => {
    // The dead-letter record of a column batch's row is the same record a row read yields.
    const [batch] = await collectAll(
      connection.read(
        { table: 'src' },
        { signal: signal(), wire: { format: COLUMNS_WIRE, maxRows: 3, maxBytes: 1 << 30 } },
      ),
    )
    await db.sql(
      `${TYPES_DDL('one_refused').replace(/\) CHARACTER/, ', CHECK (id <> 2)) CHARACTER')}`,
    )
    const result = await connection.write({ table: 'one_refused' }, [batch!.data], byColumns)
    expect(result.written).toBe(2)
    const rows = await readAll(connection, { table: 'src' })
    expect(result.failed.map((f) => f.data)).toEqual([rows[1]!.data])
    expect(columnsRecord((batch!.data as RecordData).wire!, 1)).toEqual(rows[1]!.data)
  })
})

function any() {
  return expect.any(String)
}
