// Issue 14: exact values MariaDB -> MariaDB, typed sink encoding, destination creation and
// evolution, exactly-once offsets. Data is compared by digests MariaDB computes itself.
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
} from '@nvisy/provider-core'
import { collect as collectAll, readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  createZeroDates,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { mysqlProvider } from './mysql-provider.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal
// The issue copied 100,000 rows (NVISY_MYSQL_EXACT_ROWS=100000, about a minute on a loaded
// machine); the default keeps the suite quick with the same kinds of values.
const ROWS = Number(process.env.NVISY_MYSQL_EXACT_ROWS ?? 20_000)

const FLT_MIN = 1.1754943508222875e-38
const FLT_MAX = 3.4028234663852886e38
const FLT_DENORMAL_MIN = 1.401298464324817e-45

// Every common type, and the traps of issue 14.
const TYPES_DDL = (name: string) => `CREATE TABLE \`${name}\` (
  id INT NOT NULL PRIMARY KEY,
  f FLOAT, d DOUBLE,
  i8 TINYINT, u8 TINYINT UNSIGNED, i24 MEDIUMINT, i32 INT, u32 INT UNSIGNED,
  i64 BIGINT, u64 BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), dec5 DECIMAL(5,2) UNSIGNED,
  b1 BIT(1), b12 BIT(12), b64 BIT(64),
  e ENUM('a','B','it''s'), s SET('x','y','z'),
  yr YEAR, j JSON,
  vc VARCHAR(100), tx TEXT, ch CHAR(3),
  bin BINARY(4), vb VARBINARY(20), bl BLOB,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`

/** Columns and how MariaDB prints them exactly for the digest: bytes in hex, numbers as the server's round-trip text. */
const DIGEST_COLUMNS: [string, string][] = [
  ['id', 'id'],
  // A double prints as the shortest text that parses back to it (checked below against
  // values generated from random bit patterns); FLOAT widens exactly to DOUBLE first.
  ['f', 'CAST(f + 0e0 AS CHAR)'],
  ['d', 'CAST(d AS CHAR)'],
  ...['i8', 'u8', 'i24', 'i32', 'u32', 'i64', 'u64', 'yr'].map(
    (c) => [c, `CAST(${c} AS CHAR)`] as [string, string],
  ),
  ['dec65', 'CAST(dec65 AS CHAR)'],
  ['dec5', 'CAST(dec5 AS CHAR)'],
  ['b1', 'HEX(b1)'],
  ['b12', 'HEX(b12)'],
  ['b64', 'HEX(b64)'],
  ...['e', 's', 'j', 'vc', 'tx', 'ch', 'bin', 'vb', 'bl'].map(
    (c) => [c, `HEX(${c})`] as [string, string],
  ),
  ...['dt', 'tm', 'dtm', 'ts'].map((c) => [c, `CAST(${c} AS CHAR)`] as [string, string]),
]

async function digest(db: TestDatabase, table: string): Promise<{ md5: string; rows: number }> {
  const connection = await db.admin.getConnection()
  try {
    await connection.query('SET SESSION group_concat_max_len = 1073741824')
    const row = DIGEST_COLUMNS.map(([, expr]) => `COALESCE(${expr}, '\\\\N')`).join(', ')
    const [rows] = await connection.query(
      `SELECT MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', ${row})) ORDER BY id SEPARATOR '')) AS md5, COUNT(*) AS n FROM \`${table}\``,
    )
    const first = (rows as { md5: string; n: number }[])[0]!
    return { md5: first.md5, rows: Number(first.n) }
  } finally {
    connection.release()
  }
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number) {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const view = new DataView(new ArrayBuffer(8))
function randomFloat32(next: () => number): number {
  for (;;) {
    view.setUint32(0, Math.floor(next() * 2 ** 32))
    const f = view.getFloat32(0)
    if (Number.isFinite(f)) return f
  }
}
function randomFloat64(next: () => number): number {
  for (;;) {
    view.setUint32(0, Math.floor(next() * 2 ** 32))
    view.setUint32(4, Math.floor(next() * 2 ** 32))
    const d = view.getFloat64(0)
    if (Number.isFinite(d)) return d
  }
}

const TRAP_ROWS = `INSERT INTO src (id, f, d, i8, u8, i24, i32, u32, i64, u64, dec65, dec5, b1, b12, b64, e, s, yr, j, vc, tx, ch, bin, vb, bl, dt, tm, dtm, ts) VALUES
 (1, ${FLT_MIN}, 271/3e0, -128, 255, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
  '-99999999999999999999999999999999999.999999999999999999999999999999', 999.99, b'1', b'111111111111', b'${'1'.repeat(64)}',
  'it''s', 'x,z', 2155, '{"b": 1, "a": 2, "b": 3,   "n": 1.10}', 'héllo 😀 \\'"\\\\', 'line\\nbreak\\0nul', 'abc',
  X'00FF00FF', X'00', X'FF00', '1000-01-01', '-838:59:59.000000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999'),
 (2, ${FLT_MAX}, 5e-324, 127, 0, 8388607, 2147483647, 0, 9223372036854775807, 0,
  '99999999999999999999999999999999999.999999999999999999999999999999', 0.01, b'0', b'000000000001', b'${'0'.repeat(64)}',
  'B', '', 1901, '[1, 2.50, "x", {"z": null, "a": []}]', '', '', '',
  X'00000000', X'', X'', '9999-12-31', '838:59:59.999999', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000001'),
 (3, ${FLT_DENORMAL_MIN}, 1.7976931348623157e308, 0, 1, 0, 0, 1, -1, 9223372036854775808,
  '0.000000000000000000000000000001', 0, b'1', b'100000000000', b'${'1'.repeat(63)}0',
  'a', 'x,y,z', 0, '"just a string"', '\\t', '  x  ', 'z',
  X'FFFFFFFF', X'00FF', X'00', '2024-02-29', '00:00:00.000001', '2024-02-29 13:45:00.123456', '2024-02-29 13:45:00.654321'),
 (4, 16777217, -0e0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0.000000000000000000000000000001', NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (6, -${FLT_MIN / 2}, 2.2250738585072014e-308, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

async function collect(connection: GuardedConnection, stream: unknown): Promise<Data[]> {
  return (await readAll(connection, stream)).map((item) => item.data)
}

async function copyInBatches(
  connection: GuardedConnection,
  from: unknown,
  to: unknown,
  batchSize = 5000,
): Promise<number> {
  let batch: Data[] = []
  let written = 0
  const flush = async () => {
    const result = await connection.write(to, batch, { signal: signal() })
    expect(result.failed).toEqual([])
    written += result.written
    batch = []
  }
  for await (const item of connection.read(from, { signal: signal() })) {
    batch.push(item.data)
    if (batch.length >= batchSize) await flush()
  }
  if (batch.length > 0) await flush()
  return written
}

const record = (values: Record<string, SqlValue>): Data => ({ kind: 'record', values })

describe.skipIf(skip)('mysql exact values, typed sink, prepare and offsets (issue 14)', () => {
  let db: TestDatabase
  let connection: GuardedConnection
  const floats = new Map<number, number>()
  const doubles = new Map<number, number>()

  beforeAll(async () => {
    db = await createTestDatabase()
    connection = await mysqlProvider.connect(db.input())
    await db.sql(TYPES_DDL('src'))
    await db.sql(TRAP_ROWS)
    // Random rows: FLOAT and DOUBLE from random bit patterns, the rest varied.
    const next = prng(14)
    const chunk: string[] = []
    const flush = async () => {
      if (chunk.length === 0) return
      await db.sql(
        `INSERT INTO src (id, f, d, i64, u64, dec65, b12, b64, s, vc, vb, tm, dtm, ts, j) VALUES ${chunk.join(', ')}`,
      )
      chunk.length = 0
    }
    for (let id = 100; id < 100 + ROWS; id++) {
      const f = randomFloat32(next)
      const d = randomFloat64(next)
      floats.set(id, f)
      doubles.set(id, d)
      const big =
        BigInt(Math.floor(next() * 2 ** 52)) * BigInt(Math.floor(next() * 2048)) - 2n ** 62n
      const micros = Math.floor(next() * 1e6)
        .toString()
        .padStart(6, '0')
      const seconds = Math.floor(next() * 3e9)
      const stamp = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ')
      chunk.push(
        `(${id}, ${f}, ${d}, ${big}, ${big < 0n ? -big : big}, '${big}.${micros}${micros}', ${Math.floor(next() * 4096)}, ${big < 0n ? -big : big}, '${['x', 'y,z', '', 'x,y,z'][id % 4]}', 'r${id} ☃ ${micros}', X'${micros}00ff', '${id % 2 ? '-' : ''}${Math.floor(next() * 838)}:${micros.slice(0, 2).replace(/^[6-9]/, '5')}:01.${micros}', '${stamp}.${micros}', ${seconds > 1 && seconds < 2147483647 ? `'${stamp}.${micros}'` : 'NULL'}, '{"k${id % 7}": ${id}, "a": [${Number(micros)}]}')`,
      )
      if (chunk.length >= 2000) await flush()
    }
    await flush()
  }, 300_000)

  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  it('reads FLOAT as its exact float32 and DOUBLE correctly rounded, for extremes and random bit patterns', async () => {
    const items = await collect(connection, { table: 'src', columns: ['id', 'f', 'd'] })
    expect(items.length).toBe(7 + ROWS)
    const byId = new Map(
      items.map((item) => [
        (item as { values: Record<string, SqlValue> }).values.id as number,
        (item as { values: Record<string, SqlValue> }).values,
      ]),
    )
    expect(byId.get(1)).toEqual({ id: 1, f: FLT_MIN, d: 90.33333333333333 })
    expect(byId.get(2)).toEqual({ id: 2, f: FLT_MAX, d: 5e-324 })
    expect(byId.get(3)).toEqual({ id: 3, f: FLT_DENORMAL_MIN, d: 1.7976931348623157e308 })
    // 2^24 + 1 is not a float32: the server stores the nearest, 2^24. MariaDB stores -0.0 as 0.
    expect(byId.get(4)).toMatchObject({ f: 16777216, d: 0 })
    expect(byId.get(5)).toMatchObject({ f: Math.fround(0.1), d: 0.1 })
    expect(byId.get(5)!.f).toBe(0.10000000149011612)
    expect(byId.get(6)).toMatchObject({ f: Math.fround(-FLT_MIN / 2), d: 2.2250738585072014e-308 })
    let floatMismatches = 0
    let doubleMismatches = 0
    for (const [id, f] of floats) {
      const values = byId.get(id)!
      // MariaDB keeps no negative zero.
      if (values.f !== (Object.is(f, -0) ? 0 : f)) floatMismatches++
      if (values.d !== (Object.is(doubles.get(id), -0) ? 0 : doubles.get(id))) doubleMismatches++
    }
    expect({ floatMismatches, doubleMismatches }).toEqual({
      floatMismatches: 0,
      doubleMismatches: 0,
    })
  }, 120_000)

  it('resumes exactly on a FLOAT cursor (values are exact, so they compare exactly)', async () => {
    const stream = { table: 'src', columns: ['id', 'f'], cursor: ['f'], pageSize: 3 }
    const all: { data: any; context: any }[] = []
    for await (const item of connection.read(stream, { signal: signal() })) {
      all.push(item)
      if (all.length === 50) break
    }
    const after: number[] = []
    for await (const item of connection.read(stream, {
      signal: signal(),
      after: all[20]!.context,
    })) {
      after.push((item.data as any).values.id)
      if (after.length === 29) break
    }
    expect(after).toEqual(all.slice(21).map((i) => i.data.values.id))
  })

  it('reads every type as its exact tagged value', async () => {
    const items = await collect(connection, {
      table: 'src',
      filter: [{ column: 'id', op: '<', value: 4 }],
    })
    const one = (items[0] as { values: Record<string, SqlValue> }).values
    expect(one).toMatchObject({
      i64: -9223372036854775808n,
      u64: 18446744073709551615n,
      dec65: tagged(
        'decimal',
        '-99999999999999999999999999999999999.999999999999999999999999999999',
      ),
      b1: tagged('bits', '1'),
      b12: tagged('bits', '111111111111'),
      b64: tagged('bits', '1'.repeat(64)),
      e: "it's",
      s: 'x,z',
      yr: 2155,
      j: tagged('json', '{"b": 1, "a": 2, "b": 3,   "n": 1.10}'),
      vc: 'héllo 😀 \'"\\',
      tx: 'line\nbreak\0nul',
      bin: Buffer.from('00ff00ff', 'hex'),
      tm: tagged('interval', '-838:59:59.000000'),
      dtm: tagged('timestamp', '9999-12-31T23:59:59.999999'),
      ts: tagged('timestamptz', '2038-01-19T03:14:07.999999Z'),
    })
    const two = (items[1] as { values: Record<string, SqlValue> }).values
    expect(two).toMatchObject({
      tm: tagged('interval', '838:59:59.999999'),
      b64: tagged('bits', '0'.repeat(64)),
    })
  })

  it('reads in nvisy-columns batches: every value as the row-by-row read gives it, its contexts at batch ends, resumable', async () => {
    const rowItems = await readAll(connection, { table: 'src' })
    const read = (wire: { maxRows: number; maxBytes: number }, after?: unknown) =>
      collectAll(
        connection.read(
          { table: 'src' },
          { signal: signal(), after, wire: { format: COLUMNS_WIRE, ...wire } },
        ),
      )
    const items = await read({ maxRows: 777, maxBytes: 1 << 30 })
    const rows = items.map((item) => (item.data as RecordData).wire!)
    const total = rowItems.length
    expect(rows.every((w, i) => w.rows === Math.min(777, total - i * 777))).toBe(true)
    expect(rows.reduce((n, w) => n + w.rows, 0)).toBe(rowItems.length)
    // Columns of tagged values (decimal, temporal, json, bit) travel as their text, tagged
    // again when read (WireRows.tags): no object per value waits in a batch.
    const first = rows[0]!
    const tags = Object.fromEntries(first.columns.map((name, c) => [name, first.tags?.[c]]))
    expect(tags).toMatchObject({
      dec65: 'decimal',
      b64: 'bits',
      j: 'json',
      dt: 'date',
      tm: 'interval',
      dtm: 'timestamp',
      ts: 'timestamptz',
    })
    expect(tags.vc).toBeUndefined()
    first.columns.forEach((name, c) => {
      if (tags[name] === undefined) return
      expect(
        first.values![c]!.every((v) => v === null || typeof v === 'string'),
        `${name} held as text`,
      ).toBe(true)
    })
    let at = 0
    items.forEach((item, i) => {
      const wire = rows[i]!
      for (let r = 0; r < wire.rows; r++)
        expect(columnsRecord(wire, r).values).toEqual((rowItems[at + r]!.data as RecordData).values)
      at += wire.rows
      expect(item.context).toEqual(rowItems[at - 1]!.context)
    })
    // Bounded by bytes of source text as well; and a read after a batch's context goes on from there.
    const small = await read({ maxRows: 100_000, maxBytes: 20_000 })
    expect(small.length).toBeGreaterThan(10)
    expect(small.reduce((n, i) => n + (i.data as RecordData).wire!.rows, 0)).toBe(total)
    const rest = await read({ maxRows: 5000, maxBytes: 1 << 30 }, items[3]!.context)
    expect(rest.reduce((n, i) => n + (i.data as RecordData).wire!.rows, 0)).toBe(total - 4 * 777)
  })

  it('copies MariaDB -> MariaDB exactly: prepare creates the table, same MD5 computed by the server', async () => {
    const schema = await connection.describeStream({ table: 'src' })
    expect(schema.system).toBe('mysql')
    expect(schema.primaryKey).toEqual(['id'])
    const types = Object.fromEntries(schema.columns.map((c) => [c.name, c.type]))
    expect(types).toMatchObject({
      f: { type: 'float', bits: 32 },
      d: { type: 'float', bits: 64 },
      u64: { type: 'integer', bits: 64, unsigned: true },
      dec65: { type: 'decimal', precision: 65, scale: 30 },
      b64: { type: 'bits', length: 64 },
      e: { type: 'enum', values: ['a', 'B', "it's"] },
      s: { type: 'set', values: ['x', 'y', 'z'] },
      j: { type: 'json' },
      tm: { type: 'duration', precision: 6 },
      ts: { type: 'timestamp', withTimeZone: true, precision: 6 },
    })
    const sink = { table: 'dst', create: 'ifMissing' as const }
    const planned = await connection.prepare(sink, { schema, dryRun: true })
    expect(planned.existed).toBe(false)
    expect(planned.actions[0]).toMatch(/^CREATE TABLE/)
    expect(await db.sql(`SHOW TABLES LIKE 'dst'`)).toEqual([])
    const prepared = await connection.prepare(sink, { schema })
    expect(prepared).toEqual(planned)
    expect(await connection.prepare(sink, { schema })).toEqual({ existed: true, actions: [] })

    const written = await copyInBatches(connection, { table: 'src' }, sink)
    expect(written).toBe(7 + ROWS)
    const [source, destination] = [await digest(db, 'src'), await digest(db, 'dst')]
    expect(destination).toEqual(source)
    expect(source.rows).toBe(7 + ROWS)

    // The digest sees one ulp of one FLOAT and one DOUBLE: it is not a test that cannot fail.
    await db.sql('UPDATE dst SET f = 1.1754944909521339e-38 WHERE id = 1')
    expect((await digest(db, 'dst')).md5).not.toBe(source.md5)
    await db.sql(`UPDATE dst SET f = ${FLT_MIN}, d = 90.33333333333331 WHERE id = 1`)
    expect((await digest(db, 'dst')).md5).not.toBe(source.md5)
    await db.sql('UPDATE dst SET d = 271/3e0 WHERE id = 1')
    expect((await digest(db, 'dst')).md5).toBe(source.md5)
  }, 300_000)

  it('creates a table from a PostgreSQL schema with the documented mapping and writes its values exactly', async () => {
    const schema = {
      system: 'postgres',
      primaryKey: ['id'],
      columns: [
        { name: 'id', nativeType: 'bigint', type: { type: 'integer', bits: 64 }, nullable: false },
        { name: 'n', nativeType: 'numeric', type: { type: 'decimal' }, nullable: true },
        { name: 'r', nativeType: 'real', type: { type: 'float', bits: 32 }, nullable: true },
        {
          name: 'vb',
          nativeType: 'bit varying(8)',
          type: { type: 'bits', length: 8, varying: true },
          nullable: true,
        },
        { name: 'b', nativeType: 'bit(3)', type: { type: 'bits', length: 3 }, nullable: true },
        {
          name: 'ts',
          nativeType: 'timestamp with time zone',
          type: { type: 'timestamp', withTimeZone: true },
          nullable: true,
        },
        { name: 'iv', nativeType: 'interval', type: { type: 'duration' }, nullable: true },
        { name: 'j', nativeType: 'jsonb', type: { type: 'json', binary: true }, nullable: true },
        { name: 't', nativeType: 'text', type: { type: 'text' }, nullable: true },
      ],
    } as const
    const sink = { table: 'from_pg', create: 'ifMissing' as const }
    const result = await connection.prepare(sink, { schema: schema as any })
    expect(result.actions[0]).toContain('`n` DECIMAL(65,30) NULL')
    expect(result.actions[0]).toContain('`ts` DATETIME(6) NULL')
    expect(result.actions[0]).toContain('`b` BIT(3) NULL')
    const written = await connection.write(
      sink,
      [
        record({
          id: 1n,
          n: tagged('decimal', '12345678901234567890.123456789012345678901234567890'),
          r: Math.fround(0.1),
          vb: tagged('bits', '101'),
          b: tagged('bits', '011'),
          ts: tagged('timestamptz', '2024-02-29T23:30:00.123456+02:00'),
          iv: tagged('interval', '1 day 02:03:04.5'),
          j: tagged('json', '{"b":1,"a":2}'),
          t: 'x😀',
        }),
        // 36 integer digits do not fit DECIMAL(65,30): this row fails alone.
        record({ id: 2n, n: tagged('decimal', '1'.repeat(36)) }),
      ],
      { signal: signal() },
    )
    expect(written.written).toBe(1)
    expect(written.failed.map((f) => f.index)).toEqual([1])
    expect(written.failed[0]!.error.kind).toBe('data')
    expect(written.failed[0]!.error.message).toMatch(
      /column "n" \(decimal\(65,30\)\).*decimal value.*36 integer/,
    )
    const [row] = await db.sql(
      'SELECT CAST(n AS CHAR) n, CAST(r + 0e0 AS CHAR) r, vb, BIN(b) b, CAST(ts AS CHAR) ts, CAST(iv AS CHAR) iv, j, HEX(t) t FROM from_pg',
    )
    expect(row).toEqual({
      n: '12345678901234567890.123456789012345678901234567890',
      r: '0.10000000149011612',
      vb: '101',
      b: '11',
      ts: '2024-02-29 21:30:00.123456',
      iv: '26:03:04.500000',
      j: '{"b":1,"a":2}',
      t: Buffer.from('x😀').toString('hex').toUpperCase(),
    })
  })

  it('refuses a missing table (create never) as not_found and missing columns (evolve none) as config; addColumns adds them', async () => {
    const schema = await connection.describeStream({
      table: 'src',
      columns: ['id', 'f', 'b64', 'tm'],
    })
    const missing = await connection
      .prepare({ table: 'nowhere' }, { schema, dryRun: true })
      .catch((e: ProviderError) => e)
    expect(isProviderError(missing) && missing.kind).toBe('not_found')
    expect((missing as Error).message).toContain('nowhere')

    await db.sql('CREATE TABLE narrow (id INT NOT NULL PRIMARY KEY, f FLOAT)')
    const refused = await connection.prepare({ table: 'narrow' }, { schema }).catch((e) => e)
    expect(isProviderError(refused) && refused.kind).toBe('config')
    expect(refused.message).toMatch(/"b64", "tm"/)
    const dry = await connection.prepare(
      { table: 'narrow', evolve: 'addColumns' },
      { schema, dryRun: true },
    )
    expect(dry.actions).toEqual([
      'ALTER TABLE `' +
        db.name +
        '`.`narrow` ADD COLUMN `b64` bit(64) NULL, ADD COLUMN `tm` time(6) NULL',
    ])
    expect((await db.sql('SHOW COLUMNS FROM narrow')).length).toBe(2)
    await connection.prepare({ table: 'narrow', evolve: 'addColumns' }, { schema })
    const columns = await db.sql(
      `SELECT COLUMN_NAME c, COLUMN_TYPE t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '${db.name}' AND TABLE_NAME = 'narrow' ORDER BY ORDINAL_POSITION`,
    )
    expect(columns.map((c: any) => `${c.c} ${c.t}`)).toEqual([
      'id int(11)',
      'f float',
      'b64 bit(64)',
      'tm time(6)',
    ])
    // The evolved table takes the new columns at once (the metadata cache was refreshed).
    const result = await connection.write(
      { table: 'narrow' },
      [
        record({
          id: 1,
          f: FLT_MAX,
          b64: tagged('bits', '1'.repeat(64)),
          tm: tagged('interval', '-1:00:00.000001'),
        }),
      ],
      { signal: signal() },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    expect(
      await db.sql('SELECT HEX(b64) b, CAST(tm AS CHAR) t, CAST(f + 0e0 AS CHAR) f FROM narrow'),
    ).toEqual([{ b: 'FFFFFFFFFFFFFFFF', t: '-01:00:00.000001', f: '3.4028234663852886e38' }])
  })

  it('two prepares racing to create one table both succeed', async () => {
    const schema = await connection.describeStream({ table: 'src', columns: ['id', 'd'] })
    const other = await mysqlProvider.connect(db.input())
    try {
      const sink = { table: 'raced', create: 'ifMissing' as const }
      const results = await Promise.all([
        connection.prepare(sink, { schema }),
        other.prepare(sink, { schema }),
      ])
      expect(results.map((r) => r.existed).sort()).toEqual([false, true])
    } finally {
      await other.close()
    }
  })

  it('quotes hostile identifiers everywhere (create, write, read, describe)', async () => {
    const table = 'we`ird "t\'able ü ☃ Ω'
    const column = `c\`'" x${'y'.repeat(58)}` // 64 characters
    expect(column.length).toBe(64)
    const long = 't'.repeat(64)
    const schema = {
      system: 'postgres',
      primaryKey: ['id`'],
      columns: [
        {
          name: 'id`',
          nativeType: 'integer',
          type: { type: 'integer', bits: 32 },
          nullable: false,
        },
        { name: column, nativeType: 'text', type: { type: 'text' }, nullable: true },
      ],
    } as any
    for (const name of [table, long]) {
      const sink = { table: name, create: 'ifMissing' as const }
      await connection.prepare(sink, { schema })
      const result = await connection.write(sink, [record({ 'id`': 1, [column]: 'v' })], {
        signal: signal(),
      })
      expect(result).toEqual({ written: 1, failed: [] })
      const items = await collect(connection, { table: name })
      expect(items).toEqual([record({ 'id`': 1, [column]: 'v' })])
      const described = await connection.describeStream({ table: name })
      expect(described.columns.map((c) => c.name)).toEqual(['id`', column])
    }
    // Identifiers are utf8mb3 in MySQL and MariaDB: a name with an emoji cannot exist.
    const emoji = await connection
      .prepare({ table: 'x 😀', create: 'ifMissing' }, { schema })
      .catch((e) => e)
    expect(isProviderError(emoji) && emoji.kind).toBe('config')
    expect(emoji.message).toMatch(/outside the Basic Multilingual Plane/)
  })

  it('encodes for the declared type: a value the column cannot represent fails alone, naming the column, value type and rule', async () => {
    await db.sql(
      "CREATE TABLE typed (id INT NOT NULL PRIMARY KEY, b BIT(4), i INT, d DECIMAL(5,2), s SET('a','b'), y YEAR, t TIME, f FLOAT)",
    )
    const result = await connection.write(
      { table: 'typed' },
      [
        record({
          id: 1,
          b: tagged('bits', '0101'),
          i: 7n,
          d: tagged('decimal', '123.40'),
          s: ['a', 'b'],
          y: 2024,
          t: tagged('interval', '-838:59:59'),
          f: 16777217,
        }),
        record({ id: 2, b: tagged('bits', '10101') }),
        record({ id: 3, i: 'seven' }),
        record({ id: 4, i: 2 ** 31 }),
        record({ id: 5, d: tagged('decimal', '1.005') }),
        record({ id: 6, b: 15n, s: 'b', y: 0, t: tagged('time', '23:59:59'), f: -0.1 }),
        record({ id: 7, s: ['c'] }),
        record({ id: 8, b: true, i: true, d: 999.99 }),
      ],
      { signal: signal() },
    )
    expect(result.written).toBe(3)
    const failures = Object.fromEntries(
      result.failed.map((f) => [f.index, `${f.error.kind}: ${f.error.message}`]),
    )
    expect(failures).toEqual({
      1: expect.stringMatching(
        /^data: item 1: column "b" \(bit\(4\)\): a bits value of 5 bits does not fit bit\(4\)/,
      ),
      2: expect.stringMatching(
        /^data: item 2: column "i" \(int\(11\)\): a string cannot be stored in an integer column/,
      ),
      3: expect.stringMatching(/^data: item 3: column "i" \(int\(11\)\): a number is out of range/),
      4: expect.stringMatching(
        /^data: item 4: column "d" \(decimal\(5,2\)\): a decimal value .*no rounding/,
      ),
      6: expect.stringMatching(
        /^data: item 6: column "s" .*an array has a member \(the 1st\) that is not one of the SET members/,
      ),
    })
    expect(
      await db.sql(
        'SELECT id, BIN(b) b, i, CAST(d AS CHAR) d, s, y, CAST(t AS CHAR) t, CAST(f + 0e0 AS CHAR) f FROM typed ORDER BY id',
      ),
    ).toEqual([
      { id: 1, b: '101', i: 7, d: '123.40', s: 'a,b', y: 2024, t: '-838:59:59', f: '16777216' },
      {
        id: 6,
        b: '1111',
        i: null,
        d: null,
        s: 'b',
        y: 0,
        t: '23:59:59',
        f: String(Math.fround(-0.1)),
      },
      { id: 8, b: '1', i: 1, d: '999.99', s: null, y: null, t: null, f: null },
    ])
  })

  describe('exactly-once offsets', () => {
    it('commits the offset with the batch (append and upsert) and readOffset returns it', async () => {
      await db.sql('CREATE TABLE events (id INT NOT NULL PRIMARY KEY, v VARCHAR(10))')
      const append = { table: 'events', mode: 'append' as const }
      expect(await connection.readOffset(append, 'run-1')).toBeUndefined()
      const first = await connection.write(
        append,
        [record({ id: 1, v: 'a' }), record({ id: 2, v: 'b' })],
        {
          signal: signal(),
          offset: { key: 'run-1', context: { columns: ['id'], values: [2] } },
        },
      )
      expect(first).toEqual({ written: 2, failed: [] })
      expect(await connection.readOffset(append, 'run-1')).toEqual({ columns: ['id'], values: [2] })
      // A bad row fails alone; the good rows and the offset still commit together.
      const second = await connection.write(
        append,
        [
          record({ id: 3, v: 'c' }),
          record({ id: 4, v: 'far too long a value' }),
          record({ id: 5, v: 'e' }),
        ],
        { signal: signal(), offset: { key: 'run-1', context: { columns: ['id'], values: [5] } } },
      )
      expect(second.written).toBe(2)
      expect(second.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
      expect(await connection.readOffset(append, 'run-1')).toEqual({ columns: ['id'], values: [5] })
      expect((await db.sql('SELECT id FROM events ORDER BY id')).map((r: any) => r.id)).toEqual([
        1, 2, 3, 5,
      ])
      // Upsert mode, another key, a custom offsets table.
      const upsert = { table: 'events', offsetsTable: 'my offsets' }
      await connection.write(upsert, [record({ id: 1, v: 'A' })], {
        signal: signal(),
        offset: { key: 'run-2', context: 'opaque "context"' },
      })
      expect(await connection.readOffset(upsert, 'run-2')).toBe('opaque "context"')
      expect(await connection.readOffset(upsert, 'run-1')).toBeUndefined()
      expect(await db.sql('SELECT `key` k FROM `my offsets`')).toEqual([{ k: 'run-2' }])
      // An offset with no rows (every item refused) still commits.
      const none = await connection.write(upsert, [record({ id: 9, nope: 1 })], {
        signal: signal(),
        offset: { key: 'run-2', context: 3 },
      })
      expect(none.written).toBe(0)
      expect(await connection.readOffset(upsert, 'run-2')).toBe(3)
    })

    it('a failing transaction leaves neither the rows nor the offset', async () => {
      await db.sql('CREATE TABLE atomic_rows (id INT NOT NULL PRIMARY KEY)')
      // An offsets table whose context column cannot hold the context: the offset's INSERT fails.
      await db.sql(
        'CREATE TABLE tiny_offsets (`key` VARCHAR(700) NOT NULL PRIMARY KEY, `context` VARCHAR(3) NOT NULL, `updated_at` DATETIME(6) NOT NULL)',
      )
      const sink = { table: 'atomic_rows', mode: 'append' as const, offsetsTable: 'tiny_offsets' }
      const error = await connection
        .write(sink, [record({ id: 1 }), record({ id: 2 })], {
          signal: signal(),
          offset: { key: 'k', context: { long: 'context' } },
        })
        .catch((e) => e)
      expect(isProviderError(error) && error.kind).toBe('config')
      expect(error.message).toMatch(/offsets table refused the batch's offset/)
      expect(await db.sql('SELECT * FROM atomic_rows')).toEqual([])
      expect(await db.sql('SELECT * FROM tiny_offsets')).toEqual([])
      // Also on the per-row path (a bad row forces the savepoint replay).
      const again = await connection
        .write(sink, [record({ id: 1 }), record({ id: 1 })], {
          signal: signal(),
          offset: { key: 'k', context: { long: 'context' } },
        })
        .catch((e) => e)
      expect(isProviderError(again)).toBe(true)
      expect(await db.sql('SELECT * FROM atomic_rows')).toEqual([])
    })
  })

  it('refuses zero dates loudly, naming column and row key, or reads them as null when asked', async () => {
    await createZeroDates(db)
    const error = await collect(connection, { table: 'zeros' }).catch((e) => e)
    expect(isProviderError(error) && error.kind).toBe('data')
    expect(error.message).toMatch(
      /column "d" holds a zero date \(its month or day is 00\) in the row with key \(id=2\)/,
    )
    const items = await collect(connection, { table: 'zeros', zeroDates: 'null' })
    // Resuming on a date cursor after a zero date read as null continues after it.
    const byDate: { data: any; context: any }[] = []
    for await (const item of connection.read(
      { table: 'zeros', zeroDates: 'null', cursor: ['d'] },
      { signal: signal() },
    ))
      byDate.push(item)
    expect(byDate.map((i) => i.data.values.id)).toEqual([2, 3, 1])
    const rest: number[] = []
    for await (const item of connection.read(
      { table: 'zeros', zeroDates: 'null', cursor: ['d'] },
      { signal: signal(), after: byDate[0]!.context },
    ))
      rest.push((item.data as any).values.id)
    expect(rest).toEqual([3, 1])
    expect(items.map((i: any) => [i.values.d, i.values.dt])).toEqual([
      [tagged('date', '2024-01-01'), tagged('timestamp', '2024-01-01T00:00:00')],
      [null, null],
      [null, null],
    ])
  })
})
