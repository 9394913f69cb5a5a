import { randomBytes } from 'node:crypto'
import {
  type Data,
  type GuardedConnection,
  isProviderError,
  type ProviderError,
  type RecordData,
  type SqlValue,
  tagged,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { createMysqlProvider, mysqlProvider } from './mysql-provider.js'
import type { MysqlContext } from './mysql-schemas.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal

/** A read's items; every MySQL stream yields records. */
const collect = (connection: GuardedConnection, stream: unknown, after?: MysqlContext) =>
  readAll<MysqlContext>(connection, stream, { after }) as Promise<
    { data: RecordData; context: MysqlContext }[]
  >

const ALL_TYPES_DDL = (name: string) => `CREATE TABLE \`${name}\` (
  id INT NOT NULL PRIMARY KEY,
  t_tiny TINYINT, t_small SMALLINT, t_medium MEDIUMINT, t_int INT, t_uint INT UNSIGNED,
  t_big BIGINT, t_ubig BIGINT UNSIGNED,
  t_dec DECIMAL(30,10), t_float FLOAT, t_double DOUBLE,
  t_bit1 BIT(1), t_bit8 BIT(12), t_bool BOOLEAN,
  t_char CHAR(5), t_varchar VARCHAR(200), t_text TEXT, t_enum ENUM('a','b','c'), t_set SET('x','y','z'),
  t_binary BINARY(4), t_varbinary VARBINARY(50), t_blob BLOB,
  t_date DATE, t_time TIME(6), t_datetime DATETIME(6), t_timestamp TIMESTAMP(6) NULL DEFAULT NULL,
  t_year YEAR, t_json JSON
) CHARACTER SET utf8mb4`

const ALL_TYPES_ROWS = `INSERT INTO all_types VALUES
 (1, -128, -32768, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
  '-12345678901234567890.1234567890', 1.5, 0.1, b'1', b'101010101010', TRUE,
  'ab', 'héllo \\'quoted\\' \\\\ 😀', 'long\\ntext', 'b', 'x,z',
  X'00FF10AB', X'DEADBEEF', X'000102',
  '2024-02-29', '-838:59:59.000000', '2024-02-29 13:45:00.123456', '2024-02-29 13:45:00.654321',
  2024, '{"a": [1, 2.50, "x"], "big": 12345678901234567890}'),
 (2, 127, 32767, 8388607, 2147483647, 0, 9223372036854775807, 0,
  '0.0000000001', -3.4e38, 1.7976931348623157e308, b'0', b'0', FALSE,
  '', '', '', 'a', '',
  X'00000000', X'', X'',
  '1000-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01',
  1901, '[]'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

describe.skipIf(skip)('mysql provider against a real server', () => {
  let db: TestDatabase
  let connection: Awaited<ReturnType<typeof mysqlProvider.connect>>

  beforeAll(async () => {
    db = await createTestDatabase()
    connection = await mysqlProvider.connect(db.input())
    await db.sql(ALL_TYPES_DDL('all_types'))
    await db.sql(ALL_TYPES_DDL('all_types_copy'))
    await db.sql(ALL_TYPES_ROWS)
  })
  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  it('maps every type to its exact SqlValue, row by row', async () => {
    const items = await collect(connection, { table: 'all_types' })
    expect(items.map((i) => i.data.values.id)).toEqual([1, 2, 3])
    const [one, two, three] = items.map((i) => i.data.values)
    expect(one).toEqual({
      id: 1,
      t_tiny: -128,
      t_small: -32768,
      t_medium: -8388608,
      t_int: -2147483648,
      t_uint: 4294967295,
      t_big: -9223372036854775808n,
      t_ubig: 18446744073709551615n,
      t_dec: tagged('decimal', '-12345678901234567890.1234567890'),
      t_float: 1.5,
      t_double: 0.1,
      t_bit1: tagged('bits', '1'),
      t_bit8: tagged('bits', '101010101010'),
      t_bool: 1,
      t_char: 'ab',
      t_varchar: "héllo 'quoted' \\ 😀",
      t_text: 'long\ntext',
      t_enum: 'b',
      t_set: 'x,z',
      t_binary: Buffer.from([0, 0xff, 0x10, 0xab]),
      t_varbinary: Buffer.from('deadbeef', 'hex'),
      t_blob: Buffer.from([0, 1, 2]),
      t_date: tagged('date', '2024-02-29'),
      t_time: tagged('interval', '-838:59:59.000000'),
      t_datetime: tagged('timestamp', '2024-02-29T13:45:00.123456'),
      t_timestamp: tagged('timestamptz', '2024-02-29T13:45:00.654321Z'),
      t_year: 2024,
      t_json: tagged('json', '{"a": [1, 2.50, "x"], "big": 12345678901234567890}'),
    })
    expect(one!.t_blob).toBeInstanceOf(Uint8Array)
    expect(two).toMatchObject({
      t_uint: 0,
      t_big: 9223372036854775807n,
      t_dec: tagged('decimal', '0.0000000001'),
      t_float: Math.fround(-3.4e38),
      t_double: 1.7976931348623157e308,
      t_bit1: tagged('bits', '0'),
      t_bit8: tagged('bits', '000000000000'),
      t_char: '',
      t_set: '',
      t_varbinary: Buffer.alloc(0),
      t_time: tagged('interval', '00:00:00.000000'),
      t_timestamp: tagged('timestamptz', '1970-01-01T00:00:01.000000Z'),
      t_json: tagged('json', '[]'),
    })
    for (const [key, value] of Object.entries(three!))
      if (key !== 'id') expect(value, key).toBeNull()
  })

  it('reads TINYINT(1) as boolean when asked, keeping other values', async () => {
    await db.sql('CREATE TABLE flags (id INT PRIMARY KEY, f BOOLEAN)')
    await db.sql('INSERT INTO flags VALUES (1, 0), (2, 1), (3, 5), (4, NULL)')
    const items = await collect(connection, { table: 'flags', tinyint1AsBoolean: true })
    expect(items.map((i) => i.data.values.f)).toEqual([false, true, 5, null])
  })

  it('copies every type exactly: read -> write, same checksum on both sides', async () => {
    const items = await collect(connection, { table: 'all_types', pageSize: 2 })
    const result = await connection.write(
      { table: 'all_types_copy' },
      items.map((i) => i.data),
      { signal: signal() },
    )
    expect(result.failed).toEqual([])
    expect(result.written).toBe(3)
    const digest = async (table: string) => {
      const [row] = await db.sql(
        `SELECT COUNT(*) AS n, MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', id, t_tiny, t_small, t_medium, t_int, t_uint, t_big, t_ubig,
          t_dec, HEX(t_float), t_double, HEX(t_bit1), HEX(t_bit8), t_bool, t_char, t_varchar, t_text, t_enum, t_set,
          HEX(t_binary), HEX(t_varbinary), HEX(t_blob), t_date, t_time, t_datetime, t_timestamp, t_year, t_json,
          ISNULL(t_float), ISNULL(t_text), ISNULL(t_json), ISNULL(t_blob))) ORDER BY id SEPARATOR ',')) AS h FROM \`${table}\``,
      )
      return row
    }
    const source = await digest('all_types')
    expect(Number(source.n)).toBe(3)
    expect(await digest('all_types_copy')).toEqual(source)
    const [a] = await db.sql('CHECKSUM TABLE all_types')
    const [b] = await db.sql('CHECKSUM TABLE all_types_copy')
    expect(String(b.Checksum)).toBe(String(a.Checksum))
    // A second write of the same batch (a replay) changes nothing.
    const again = await connection.write(
      { table: 'all_types_copy' },
      items.map((i) => i.data),
      { signal: signal() },
    )
    expect(again.failed).toEqual([])
    const [c] = await db.sql('CHECKSUM TABLE all_types_copy')
    expect(String(c.Checksum)).toBe(String(a.Checksum))
  })

  it('detects MariaDB JSON (LONGTEXT + json_valid) and writes JSON text as is', async () => {
    await db.sql('CREATE TABLE docs (id BIGINT PRIMARY KEY, body JSON, note LONGTEXT)')
    await db.sql(`INSERT INTO docs VALUES (1, '{"n": 1.000, "s": "x"}', '{"not": "json-typed"}')`)
    const [item] = await collect(connection, { table: 'docs' })
    expect(item!.data.values).toEqual({
      id: 1n,
      body: tagged('json', '{"n": 1.000, "s": "x"}'),
      note: '{"not": "json-typed"}',
    })
    const bad = await connection.write(
      { table: 'docs' },
      [
        { kind: 'record', values: { id: 2n, body: tagged('json', '{"ok": true}') } },
        { kind: 'record', values: { id: 3n, body: tagged('json', '{broken') } },
      ],
      { signal: signal() },
    )
    expect(bad.written).toBe(1)
    expect(bad.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
  })

  it('converts timestamptz with an offset to UTC and keeps microseconds', async () => {
    await db.sql(
      'CREATE TABLE instants (id INT PRIMARY KEY, at TIMESTAMP(6) NULL, wall DATETIME(6))',
    )
    const result = await connection.write(
      { table: 'instants' },
      [
        {
          kind: 'record',
          values: {
            id: 1,
            at: tagged('timestamptz', '2024-03-01T01:30:00.000007+02:00'),
            wall: tagged('timestamp', '2024-03-01T01:30:00.999999'),
          },
        },
      ],
      { signal: signal() },
    )
    expect(result.failed).toEqual([])
    const [item] = await collect(connection, { table: 'instants' })
    expect(item!.data.values.at).toEqual(tagged('timestamptz', '2024-02-29T23:30:00.000007Z'))
    expect(item!.data.values.wall).toEqual(tagged('timestamp', '2024-03-01T01:30:00.999999'))
  })

  describe('hostile identifiers', () => {
    const table = 'we`ird; DROP TABLE x;-- \'tab"le 名前'
    const idColumn = 'i`d'
    const textColumn = 'na;me\' --"`x` 列'
    beforeAll(async () => {
      const q = (s: string) => `\`${s.replace(/`/g, '``')}\``
      await db.sql(`CREATE TABLE x (id INT PRIMARY KEY)`)
      await db.sql(
        `CREATE TABLE ${q(table)} (${q(idColumn)} INT PRIMARY KEY, ${q(textColumn)} VARCHAR(100))`,
      )
    })

    it('writes, upserts, reads, resumes and filters without injection', async () => {
      const rows = (n: number, suffix: string): Data[] =>
        Array.from({ length: n }, (_, i) => ({
          kind: 'record',
          values: { [idColumn]: i, [textColumn]: `v'${i}\`; DROP TABLE x; --${suffix}` },
        }))
      expect(
        (await connection.write({ table }, rows(5, 'a'), { signal: signal() })).failed,
      ).toEqual([])
      expect(
        (await connection.write({ table }, rows(5, 'b'), { signal: signal() })).failed,
      ).toEqual([])
      const items = await collect(connection, { table, pageSize: 2 })
      expect(items.map((i) => i.data.values[idColumn])).toEqual([0, 1, 2, 3, 4])
      expect(items[3]!.data.values[textColumn]).toBe("v'3`; DROP TABLE x; --b")
      const rest = await collect(connection, { table, pageSize: 2 }, items[1]!.context)
      expect(rest.map((i) => i.data.values[idColumn])).toEqual([2, 3, 4])
      const filtered = await collect(connection, {
        table,
        filter: [{ column: textColumn, op: '=', value: "v'2`; DROP TABLE x; --b" }],
      })
      expect(filtered.map((i) => i.data.values[idColumn])).toEqual([2])
      const injected = await collect(connection, {
        table,
        filter: [{ column: textColumn, op: '=', value: "' OR '1'='1" }],
      })
      expect(injected).toEqual([])
      expect(await db.sql('SHOW TABLES LIKE "x"')).toHaveLength(1)
    })

    it('discovers tables, views, columns, types and primary keys', async () => {
      await db.sql('CREATE VIEW v_flags AS SELECT id, f FROM flags')
      const streams = await connection.discover()
      const byName = new Map(streams.map((s) => [s.name, s]))
      expect(byName.get(table)).toMatchObject({
        type: 'table',
        data: 'record',
        stream: { table, database: db.name },
        fields: [
          { name: idColumn, type: 'int(11)', nullable: false, primaryKey: true },
          { name: textColumn, type: 'varchar(100)', nullable: true, primaryKey: false },
        ],
      })
      expect(byName.get('v_flags')?.type).toBe('view')
      expect(byName.get('docs')?.fields?.find((f) => f.name === 'body')?.type).toBe('json')
    })
  })

  describe('keyset reads', () => {
    beforeAll(async () => {
      await db.sql(
        'CREATE TABLE events (tenant VARCHAR(10) NOT NULL, seq BIGINT NOT NULL, updated_at DATETIME(6) NULL, payload TEXT, PRIMARY KEY (tenant, seq))',
      )
      const values: string[] = []
      for (let i = 0; i < 40; i++) {
        const updated =
          i % 7 === 0
            ? 'NULL'
            : `'2024-01-01 00:00:${String(i % 10).padStart(2, '0')}.00000${i % 3}'`
        values.push(`('${['a', 'b', 'c'][i % 3]}', ${9007199254740990 + i}, ${updated}, 'p${i}')`)
      }
      await db.sql(`INSERT INTO events VALUES ${values.join(', ')}`)
    })

    it('resumes after any item with a composite key, bigints and pages of every size', async () => {
      for (const pageSize of [1, 3, 40, 1000]) {
        const all = await collect(connection, { table: 'events', pageSize })
        expect(all).toHaveLength(40)
        for (const k of [0, 5, 17, 38, 39]) {
          const rest = await collect(
            connection,
            { table: 'events', pageSize },
            JSON.parse(JSON.stringify(all[k]!.context)),
          )
          expect(rest.map((r) => r.data.values.payload)).toEqual(
            all.slice(k + 1).map((r) => r.data.values.payload),
          )
        }
      }
    })

    it('orders by a nullable cursor column with the primary key as tiebreaker, and picks up changes', async () => {
      const stream = { table: 'events', cursor: ['updated_at'], columns: ['payload'], pageSize: 4 }
      const all = await collect(connection, stream)
      expect(all).toHaveLength(40)
      expect(all[0]!.context.columns).toEqual(['updated_at', 'tenant', 'seq'])
      expect(all[0]!.data.values).toEqual({ payload: expect.any(String) })
      for (const k of [0, 4, 5, 6, 20, 39]) {
        const rest = await collect(connection, stream, all[k]!.context)
        expect(rest.map((r) => r.data.values.payload)).toEqual(
          all.slice(k + 1).map((r) => r.data.values.payload),
        )
      }
      // Incremental: a row updated later, and a new row, appear after the last context.
      await db.sql(
        `UPDATE events SET updated_at = '2030-01-01 00:00:00', payload = 'changed' WHERE seq = 9007199254740990`,
      )
      await db.sql(`INSERT INTO events VALUES ('z', 1, '2030-01-02 00:00:00', 'new')`)
      const fresh = await collect(connection, stream, all[39]!.context)
      expect(fresh.map((r) => r.data.values.payload)).toEqual(['changed', 'new'])
    })

    it('applies structured filters with values as literals', async () => {
      const items = await collect(connection, {
        table: 'events',
        filter: [
          { column: 'tenant', op: 'in', value: ['a', 'c'] },
          { column: 'seq', op: '>=', value: '9007199254741000' },
          { column: 'updated_at', op: 'is not null' },
        ],
      })
      expect(items.length).toBeGreaterThan(0)
      for (const item of items) {
        expect(['a', 'c']).toContain(item.data.values.tenant)
        expect(item.data.values.seq as bigint).toBeGreaterThanOrEqual(9007199254741000n)
        expect(item.data.values.updated_at).not.toBeNull()
      }
    })

    it('refuses a context made with other cursor columns, and a table with no key and no cursor', async () => {
      const [first] = await collect(connection, { table: 'events', pageSize: 1 })
      await expect(
        collect(connection, { table: 'events', cursor: ['updated_at'] }, first!.context),
      ).rejects.toMatchObject({
        kind: 'config',
      })
      await db.sql('CREATE TABLE nokey (a INT)')
      await expect(collect(connection, { table: 'nokey' })).rejects.toMatchObject({
        kind: 'config',
      })
      await expect(
        collect(connection, { table: 'events', columns: ['nope'] }),
      ).rejects.toMatchObject({ kind: 'config' })
    })
  })

  describe('writes', () => {
    beforeAll(async () => {
      await db.sql(`CREATE TABLE people (
        id INT PRIMARY KEY, email VARCHAR(20) NOT NULL UNIQUE, age TINYINT UNSIGNED,
        born DATE, score DECIMAL(5,2), CHECK (age < 150))`)
      await db.sql(
        'CREATE TABLE logbook (id INT AUTO_INCREMENT PRIMARY KEY, line VARCHAR(50) NOT NULL)',
      )
    })
    const person = (id: number, extra: Record<string, SqlValue> = {}): Data => ({
      kind: 'record',
      values: {
        id,
        email: `p${id}@x.io`,
        age: 30,
        born: tagged('date', '1990-01-01'),
        score: tagged('decimal', '1.50'),
        ...extra,
      },
    })

    it('isolates each bad row and commits the good ones', async () => {
      const batch: Data[] = [
        person(1),
        person(2, { email: null }), // 1048 NOT NULL
        person(3, { email: 'way-too-long-for-twenty@x.io' }), // 1406 too long
        person(4, { age: 300 }), // 1264 out of range
        person(5, { born: tagged('date', 'not-a-date') }), // 1292 bad date
        person(6, { score: tagged('decimal', '12') }),
        person(7, { email: 'p1@x.io' }), // collides with row 1 on the unique email: not overwritten
        person(8, { unknown_column: 1 }), // not in the table
        person(9, { age: Number.NaN }), // not storable
        person(10, { age: 149 }),
      ]
      const result = await connection.write({ table: 'people' }, batch, { signal: signal() })
      expect(result.failed.map((f) => f.index)).toEqual([1, 2, 3, 4, 6, 7, 8])
      for (const f of result.failed) {
        expect(f.error.kind).toBe('data')
        expect(f.error.stream).toBe('people')
        expect(f.error.message).toContain(`item ${f.index}`)
      }
      expect(result.failed.find((f) => f.index === 6)!.error.message).toContain(
        'collides with another row',
      )
      expect(result.written).toBe(3)
      const rows = await db.sql('SELECT id, score FROM people ORDER BY id')
      expect(rows.map((r) => r.id)).toEqual([1, 6, 10])
      expect(rows[1].score).toBe('12.00')
    })

    it('upserts by key: a replay changes values but adds no rows', async () => {
      await connection.write({ table: 'people' }, [person(20), person(21)], { signal: signal() })
      const result = await connection.write(
        { table: 'people' },
        [person(20, { age: 41 }), person(21)],
        { signal: signal() },
      )
      expect(result).toEqual({ written: 2, failed: [] })
      const rows = await db.sql('SELECT id, age FROM people WHERE id IN (20, 21) ORDER BY id')
      expect(rows).toEqual([
        { id: 20, age: 41 },
        { id: 21, age: 30 },
      ])
    })

    it('appends with multi-row inserts, in batches larger than one statement', async () => {
      const batch: Data[] = Array.from({ length: 2500 }, (_, i) => ({
        kind: 'record',
        values: { line: `line ${i}` },
      }))
      const result = await connection.write({ table: 'logbook', mode: 'append' }, batch, {
        signal: signal(),
      })
      expect(result).toEqual({ written: 2500, failed: [] })
      const [row] = await db.sql('SELECT COUNT(*) AS n FROM logbook')
      expect(Number(row.n)).toBe(2500)
      // Appending an existing key is a duplicate: that row fails alone.
      const dup = await connection.write(
        { table: 'logbook', mode: 'append' },
        [
          { kind: 'record', values: { id: 1, line: 'dup' } },
          { kind: 'record', values: { line: 'fresh' } },
        ],
        { signal: signal() },
      )
      expect(dup.written).toBe(1)
      expect(dup.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
        [0, 'data', 'ER_DUP_ENTRY'],
      ])
    })

    it('refuses to write a view', async () => {
      await expect(
        connection.write({ table: 'v_flags' }, [{ kind: 'record', values: { id: 1 } }], {
          signal: signal(),
        }),
      ).rejects.toMatchObject({ kind: 'config' })
    })
  })

  describe('errors', () => {
    it('a wrong password is auth, without the password anywhere', async () => {
      const user = `nvisy_u_${randomBytes(3).toString('hex')}`
      await db.sql(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY 'correct-horse-1'`)
      try {
        const secret = 'wrong-battery-staple-9'
        const input = db.input()
        for (const credentials of [
          { user, password: secret },
          {
            url: `mysql://${user}:${secret}@${(input.params as any).host}:${(input.params as any).port}/${db.name}`,
          },
        ]) {
          const params = 'url' in credentials ? { database: db.name } : input.params
          const bad = await mysqlProvider.connect({ credentials, params })
          const error = await bad.check().catch((e: unknown) => e)
          await bad.close()
          expect(isProviderError(error)).toBe(true)
          expect((error as ProviderError).kind).toBe('auth')
          expect(JSON.stringify((error as ProviderError).toJSON())).not.toContain(secret)
          expect(String((error as Error).stack)).not.toContain(secret)
        }
      } finally {
        await db.sql(`DROP USER IF EXISTS '${user}'@'%'`)
      }
    })

    it('an unknown database or table is not_found, naming the table', async () => {
      const missingDb = await mysqlProvider.connect(db.input({ database: `${db.name}_missing` }))
      await expect(missingDb.check()).rejects.toMatchObject({ kind: 'not_found' })
      await missingDb.close()
      const error = await collect(connection, { table: 'no_such_table' }).catch((e: unknown) => e)
      expect(error).toMatchObject({ kind: 'not_found', stream: 'no_such_table', operation: 'read' })
      expect((error as Error).message).toContain('no_such_table')
    })

    it('a refused connection is transient', async () => {
      const refused = await mysqlProvider.connect({
        credentials: { user: 'root' },
        params: { host: '127.0.0.1', port: 1, database: 'x' },
      })
      await expect(refused.check()).rejects.toMatchObject({ kind: 'transient' })
      await refused.close()
    })

    it('a statement timeout stops a long statement', async () => {
      const slow = await mysqlProvider.connect(db.input({ statementTimeoutMs: 200 }))
      await db.sql('CREATE OR REPLACE VIEW slow_view AS SELECT id, SLEEP(1) AS s FROM flags')
      const started = Date.now()
      const error = await collect(slow, { table: 'slow_view', cursor: ['id'] }).catch(
        (e: unknown) => e,
      )
      await slow.close()
      expect(Date.now() - started).toBeLessThan(3000)
      expect(error).toMatchObject({ kind: 'transient' })
    })
  })

  it('works over an injected pool and leaves it open', async () => {
    const provider = createMysqlProvider({ pool: db.admin })
    const injected = await provider.connect({
      credentials: { user: 'unused' },
      params: { database: db.name },
    })
    const items = await collect(injected, { table: 'flags' })
    expect(items).toHaveLength(4)
    await injected.close()
    expect(await db.sql('SELECT 1 AS one')).toEqual([{ one: 1 }])
  })

  it('keeps memory flat: a read stops early without fetching the table', async () => {
    await db.sql('CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(10))')
    await db.sql('INSERT INTO big SELECT seq, "x" FROM seq_1_to_20000')
    let n = 0
    for await (const _ of connection.read({ table: 'big', pageSize: 100 }, { signal: signal() })) {
      if (++n === 250) break
    }
    expect(n).toBe(250)
  })
})
