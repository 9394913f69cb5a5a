import {
  ProviderError,
  type RecordData,
  type SqlValue,
  type StreamSchema,
  tagged,
} from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminPool, skipReason, testInput, uniqueSchema } from './__fixtures__/postgres.js'
import { postgresProvider } from './index.js'

const skip = await skipReason()
const schema = uniqueSchema('nvisy_pg_typed')
const admin = adminPool()
const signal = new AbortController().signal
const q = (name: string) => `"${name.replace(/"/g, '""')}"`
const record = (values: Record<string, SqlValue>): RecordData => ({ kind: 'record', values })

type Connection = Awaited<ReturnType<typeof postgresProvider.connect>>
let connection: Connection

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error), `expected a ProviderError, got ${String(error)}`).toBe(
    true,
  )
  return error as ProviderError
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await admin.query(sql)).rows
}

const TYPED = `
  id int PRIMARY KEY, b1 bit(1), b64 bit(64), vb bit varying(10), flag boolean, amount numeric(10,2),
  r real, d double precision, span interval, mood ${q(schema)}.mood, ints integer[], j json, jb jsonb,
  small smallint, at timestamptz`

// The value forms other sources produce: MySQL BIT(n) as tagged bits of exactly n digits,
// BIGINT UNSIGNED as bigint, TIME as tagged interval, JSON as tagged text with duplicate keys.
const GOOD: Record<string, SqlValue>[] = [
  {
    id: 1,
    b1: tagged('bits', '1'),
    b64: tagged('bits', `1${'0'.repeat(62)}1`),
    vb: tagged('bits', '101'),
    flag: tagged('bits', '1'),
    amount: tagged('decimal', '12345678.91'),
    r: 1.5,
    d: 0.1 + 0.2,
    span: tagged('interval', '-838:59:59.000000'),
    mood: 'happy',
    ints: [1, null, 3],
    j: tagged('json', '{"a": 1, "a": 2,  "b":[1, 2.50]}'),
    jb: tagged('json', '{"b": 1, "a": 2}'),
    small: 32767,
    at: tagged('timestamp', '2024-02-29T13:45:00.123456'),
  },
  {
    id: 2,
    b1: true,
    b64: 2n ** 64n - 1n,
    vb: 5n,
    flag: 0,
    amount: 12n,
    r: Math.fround(0.1),
    d: Number.NaN,
    span: tagged('interval', 'P1DT2H3M4.5S'),
    mood: 'sad',
    ints: [],
    j: tagged('json', '"x"'),
    jb: tagged('json', '[1, {"k": null}]'),
    small: -32768,
    at: tagged('timestamptz', '2024-01-01T00:00:00.000001Z'),
  },
]

const EXPECTED = [
  {
    id: 1,
    b1: '1',
    b64: `1${'0'.repeat(62)}1`,
    vb: '101',
    flag: true,
    amount: '12345678.91',
    r: '1.5',
    d: '0.30000000000000004',
    span: '-838:59:59',
    mood: 'happy',
    ints: '{1,NULL,3}',
    j: '{"a": 1, "a": 2,  "b":[1, 2.50]}',
    jb: '{"a": 2, "b": 1}',
    small: 32767,
    at: '2024-02-29 13:45:00.123456+00',
  },
  {
    id: 2,
    b1: '1',
    b64: '1'.repeat(64),
    vb: '101',
    flag: false,
    amount: '12.00',
    r: String(Math.fround(0.1)),
    d: 'NaN',
    span: '1 day 02:03:04.5',
    mood: 'sad',
    ints: '{}',
    j: '"x"',
    jb: '[1, {"k": null}]',
    small: -32768,
    at: '2024-01-01 00:00:00.000001+00',
  },
]

afterAll(async () => {
  await admin.end()
})

const READ_BACK = `SELECT id, b1::text, b64::text, vb::text, flag, amount::text, r::float8::text AS r, d::text, span::text,
  mood::text, ints::text, j::text, jb::text, small, at::text FROM ${q(schema)}.%s ORDER BY id`

describe.skipIf(skip)('postgres sink: values encoded for the declared column type', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA ${q(schema)}`)
    await admin.query(`CREATE TYPE ${q(schema)}.mood AS ENUM ('happy', 'sad')`)
    for (const table of ['typed_upsert', 'typed_append', 'refused_upsert', 'refused_append']) {
      await admin.query(`CREATE TABLE ${q(schema)}.${table} (${TYPED})`)
    }
    await admin.query(
      `ALTER TABLE ${q(schema)}.refused_append ADD CONSTRAINT small_positive CHECK (small >= 0)`,
    )
    await admin.query(
      `ALTER TABLE ${q(schema)}.refused_upsert ADD CONSTRAINT small_positive CHECK (small >= 0)`,
    )
    connection = await postgresProvider.connect(testInput(schema))
  })
  afterAll(async () => {
    await connection?.close()
    await admin.query(`DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`)
  })

  for (const mode of ['upsert', 'append'] as const) {
    it(`${mode}: bit, boolean, numeric, real, double, interval, enum, int[], json, jsonb from other sources' forms`, async () => {
      const table = `typed_${mode}`
      const result = await connection.write({ table, mode }, GOOD.map(record), { signal })
      expect(result).toEqual({ written: 2, failed: [] })
      const got = await rows(READ_BACK.replace('%s', table))
      expect(got).toEqual(EXPECTED)
      // The json column keeps the text byte-exact (duplicate keys, spacing), by PostgreSQL's md5.
      const [{ same }] = (await rows(
        `SELECT md5(j::text) = md5('{"a": 1, "a": 2,  "b":[1, 2.50]}') AS same FROM ${q(schema)}.${table} WHERE id = 1`,
      )) as [{ same: boolean }]
      expect(same).toBe(true)
    })

    it(`${mode}: a value the column cannot hold fails its row alone, naming the column and rule`, async () => {
      const table = `refused_${mode}`
      const bad: [string, SqlValue, RegExp][] = [
        ['b1', tagged('bits', '10'), /column "b1" \(bit\(1\)\): tagged bits value has 2 bits/],
        ['b64', 2n ** 64n, /column "b64" \(bit\(64\)\): bigint value does not fit in 64 bits/],
        ['amount', tagged('decimal', '1.234'), /"amount".*numeric\(10,2\) would round it to 2/],
        ['amount', tagged('decimal', '123456789.5'), /"amount".*at most 8/],
        ['r', 0.1 + 0.2, /"r" \(real\): number value is not exactly representable as real/],
        ['mood', 'angry', /"mood".*not a label of enum/],
        ['small', 40_000, /"small" \(smallint\): number value is out of range/],
        ['ints', [1, 2.5], /"ints".*element \[1\].*not an integer/],
        ['flag', 7, /"flag" \(boolean\)/],
      ]
      const batch: Record<string, SqlValue>[] = [
        { id: 100, small: 1, amount: tagged('decimal', '1.5') },
      ]
      bad.forEach(([column, value], i) => {
        batch.push({ id: 101 + i, small: 1, [column]: value })
      })
      // One the server refuses (CHECK small >= 0): the batch is redone row by row.
      batch.push({ id: 200, small: -1 })
      batch.push({ id: 201, small: 2 })
      const result = await connection.write({ table, mode }, batch.map(record), { signal })
      expect(result.written).toBe(2)
      expect(result.failed.map((f) => f.index)).toEqual([
        ...bad.map((_, i) => i + 1),
        bad.length + 1,
      ])
      result.failed.forEach((f, i) => {
        expect(f.error.kind).toBe('data')
        if (i < bad.length) expect(f.error.message).toMatch(bad[i]![2])
        else expect(f.error.message).toMatch(/small_positive/)
      })
      expect(await rows(`SELECT id, amount::text FROM ${q(schema)}.${table} ORDER BY id`)).toEqual([
        { id: 100, amount: '1.50' },
        { id: 201, amount: null },
      ])
    })
  }
})

describe.skipIf(skip)('postgres sink: exactly-once offsets committed with the batch', () => {
  const offsetsSchema = uniqueSchema('nvisy_pg_offsets')
  let conn: Connection
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA ${q(offsetsSchema)}`)
    await admin.query(
      `CREATE TABLE ${q(offsetsSchema)}.events (id bigint, v text CHECK (v <> 'bad'))`,
    )
    await admin.query(`CREATE TABLE ${q(offsetsSchema)}.keyed (id bigint PRIMARY KEY, v text)`)
    // A failure that is no row's fault (class P0): the whole batch must roll back.
    await admin.query(`CREATE FUNCTION ${q(offsetsSchema)}.boom() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN IF NEW.v = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`)
    await admin.query(`CREATE TRIGGER boom BEFORE INSERT ON ${q(offsetsSchema)}.events
      FOR EACH ROW EXECUTE FUNCTION ${q(offsetsSchema)}.boom()`)
    conn = await postgresProvider.connect(testInput(offsetsSchema))
  })
  afterAll(async () => {
    await conn?.close()
    await admin.query(`DROP SCHEMA IF EXISTS ${q(offsetsSchema)} CASCADE`)
  })

  const batch = (from: number, n: number, v = 'ok') =>
    Array.from({ length: n }, (_, i) => record({ id: BigInt(from + i), v }))
  const count = async (table = 'events') =>
    Number(
      (
        (await admin.query(`SELECT count(*)::int AS n FROM ${q(offsetsSchema)}.${table}`))
          .rows[0] as { n: number }
      ).n,
    )

  it('COPY append: rows and offset in one transaction; readOffset returns the context exactly', async () => {
    const stream = { table: 'events', mode: 'append' as const }
    expect(await conn.readOffset(stream, 'run-1/node-a')).toBeUndefined()
    const context = { cursor: ['9223372036854775807', 3], note: 'ünï "q"' }
    const result = await conn.write(stream, batch(1, 100), {
      signal,
      offset: { key: 'run-1/node-a', context },
    })
    expect(result).toEqual({ written: 100, failed: [] })
    expect(await conn.readOffset(stream, 'run-1/node-a')).toEqual(context)
    expect(await count()).toBe(100)
    // The offsets table is in the destination schema, named _nvisy_offsets by default.
    const stored = await admin.query(
      `SELECT key, context::text AS context FROM ${q(offsetsSchema)}._nvisy_offsets`,
    )
    expect(stored.rows).toEqual([{ key: 'run-1/node-a', context: JSON.stringify(context) }])
  })

  it('a batch that fails leaves neither its rows nor its offset', async () => {
    const stream = { table: 'events', mode: 'append' as const }
    const before = await count()
    const error = await failure(
      conn.write(stream, [...batch(1000, 50), ...batch(2000, 1, 'boom')], {
        signal,
        offset: { key: 'run-1/node-a', context: { cursor: ['after-boom'] } },
      }),
    )
    expect(error.kind).not.toBe('data')
    expect(await count()).toBe(before)
    expect(await conn.readOffset(stream, 'run-1/node-a')).toEqual({
      cursor: ['9223372036854775807', 3],
      note: 'ünï "q"',
    })
  })

  it('an offset that cannot be committed takes the rows with it', async () => {
    const stream = { table: 'events', mode: 'append' as const, offsetsTable: 'strict_offsets' }
    await admin.query(`CREATE TABLE ${q(offsetsSchema)}.strict_offsets (
      key text PRIMARY KEY CHECK (key <> 'refused'), context json NOT NULL, updated_at timestamptz NOT NULL)`)
    const before = await count()
    await failure(
      conn.write(stream, batch(3000, 10), { signal, offset: { key: 'refused', context: 1 } }),
    )
    expect(await count()).toBe(before)
    expect(await conn.readOffset(stream, 'refused')).toBeUndefined()
  })

  it('a bad row fails alone and the good rows commit with the offset (COPY redone in parts)', async () => {
    const stream = { table: 'events', mode: 'append' as const }
    const before = await count()
    const result = await conn.write(
      stream,
      [...batch(4000, 5), ...batch(4005, 1, 'bad'), ...batch(4006, 4)],
      {
        signal,
        offset: { key: 'run-2', context: { cursor: [4009] } },
      },
    )
    expect(result.written).toBe(9)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[5, 'data']])
    expect(await count()).toBe(before + 9)
    expect(await conn.readOffset(stream, 'run-2')).toEqual({ cursor: [4009] })
  })

  for (const mode of ['append', 'upsert'] as const) {
    it(`${mode}: in a large batch, exactly the rows the server refuses fail (first, last, adjacent)`, async () => {
      const table = mode === 'append' ? 'events' : 'keyed'
      const stream = { table, mode }
      const before = await count(table)
      const bad = new Set([0, 1, 777, 1500, 1501, 1502, 2999])
      const items = Array.from({ length: 3000 }, (_, i) =>
        record({
          id: BigInt(10_000 + i),
          v: bad.has(i) ? (mode === 'append' ? 'bad' : null) : 'ok',
        }),
      )
      if (mode === 'upsert') {
        await admin.query(
          `ALTER TABLE ${q(offsetsSchema)}.keyed ADD CONSTRAINT v_set CHECK (v IS NOT NULL)`,
        )
      }
      const result = await conn.write(stream, items, {
        signal,
        offset: { key: `large-${mode}`, context: 3000 },
      })
      expect(result.failed.map((f) => f.index)).toEqual([...bad])
      expect(result.failed.every((f) => f.error.kind === 'data')).toBe(true)
      expect(result.written).toBe(3000 - bad.size)
      expect(await count(table)).toBe(before + 3000 - bad.size)
      expect(await conn.readOffset(stream, `large-${mode}`)).toBe(3000)
    })
  }

  it('upsert mode commits the offset too, and replaying a batch changes nothing', async () => {
    const stream = { table: 'keyed' }
    const before = await count('keyed')
    await conn.write(stream, batch(1, 3), { signal, offset: { key: 'k', context: 'first' } })
    await conn.write(stream, batch(1, 5), { signal, offset: { key: 'k', context: 'second' } })
    expect(await conn.readOffset(stream, 'k')).toBe('second')
    expect(await count('keyed')).toBe(before + 5)
  })
})

describe.skipIf(skip)('postgres sink: prepare creates and evolves the destination', () => {
  const ddlSchema = uniqueSchema('nvisy_pg_ddl')
  let conn: Connection
  // 63 bytes exactly (PostgreSQL's limit), with multi-byte characters.
  const LONG = `ü${'x'.repeat(61)}`
  const HOSTILE = {
    table: `Tab"le ünï; DROP TABLE x; --`,
    id: `I"d`,
    spaced: 'with space',
    mixed: 'MixedCase',
  }

  const MYSQL: StreamSchema = {
    system: 'mysql',
    primaryKey: [HOSTILE.id],
    columns: [
      {
        name: HOSTILE.id,
        nativeType: 'bigint unsigned',
        type: { type: 'integer', bits: 64, unsigned: true },
        nullable: false,
      },
      { name: 'tiny', nativeType: 'tinyint', type: { type: 'integer', bits: 8 }, nullable: true },
      {
        name: 'u16',
        nativeType: 'smallint unsigned',
        type: { type: 'integer', bits: 16, unsigned: true },
        nullable: true,
      },
      { name: 'med', nativeType: 'mediumint', type: { type: 'integer', bits: 24 }, nullable: true },
      {
        name: 'u32',
        nativeType: 'int unsigned',
        type: { type: 'integer', bits: 32, unsigned: true },
        nullable: true,
      },
      {
        name: HOSTILE.spaced,
        nativeType: 'decimal(12,3)',
        type: { type: 'decimal', precision: 12, scale: 3 },
        nullable: true,
      },
      { name: 'f32', nativeType: 'float', type: { type: 'float', bits: 32 }, nullable: true },
      { name: 'f64', nativeType: 'double', type: { type: 'float', bits: 64 }, nullable: true },
      { name: 'b1', nativeType: 'bit(1)', type: { type: 'bits', length: 1 }, nullable: true },
      { name: 'b64', nativeType: 'bit(64)', type: { type: 'bits', length: 64 }, nullable: true },
      {
        name: HOSTILE.mixed,
        nativeType: 'varchar(20)',
        type: { type: 'text', maxLength: 20 },
        nullable: true,
      },
      { name: 'body', nativeType: 'longtext', type: { type: 'text' }, nullable: true },
      {
        name: 'blob',
        nativeType: 'blob',
        type: { type: 'binary', maxLength: 65535 },
        nullable: true,
      },
      { name: 'day', nativeType: 'date', type: { type: 'date' }, nullable: true },
      {
        name: 'span',
        nativeType: 'time(6)',
        type: { type: 'duration', precision: 6 },
        nullable: true,
      },
      {
        name: 'wall',
        nativeType: 'datetime(6)',
        type: { type: 'timestamp', precision: 6, withTimeZone: false },
        nullable: true,
      },
      {
        name: 'instant',
        nativeType: 'timestamp(3)',
        type: { type: 'timestamp', precision: 3, withTimeZone: true },
        nullable: true,
      },
      { name: 'yr', nativeType: 'year', type: { type: 'year' }, nullable: true },
      { name: 'doc', nativeType: 'json', type: { type: 'json' }, nullable: true },
      {
        name: 'size',
        nativeType: "enum('s','m','l')",
        type: { type: 'enum', values: ['s', 'm', "l'x"] },
        nullable: true,
      },
      {
        name: 'tags',
        nativeType: "set('a','b')",
        type: { type: 'set', values: ['a', 'b'] },
        nullable: true,
      },
      { name: 'uid', nativeType: 'uuid', type: { type: 'uuid' }, nullable: true },
      { name: LONG, nativeType: 'int', type: { type: 'integer', bits: 32 }, nullable: true },
    ],
  }

  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA ${q(ddlSchema)}`)
    conn = await postgresProvider.connect(testInput(ddlSchema))
  })
  afterAll(async () => {
    await conn?.close()
    await admin.query(`DROP SCHEMA IF EXISTS ${q(ddlSchema)} CASCADE`)
  })

  async function columnTypes(table: string): Promise<Record<string, string>> {
    const result = await admin.query<{ name: string; type: string; notnull: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [`${q(ddlSchema)}.${q(table)}`],
    )
    return Object.fromEntries(
      result.rows.map((r) => [r.name, r.type + (r.notnull ? ' not null' : '')]),
    )
  }

  it('with create never (the default), a missing table is not_found, in dryRun too', async () => {
    for (const dryRun of [true, false]) {
      const error = await failure(conn.prepare({ table: 'absent' }, { schema: MYSQL, dryRun }))
      expect(error.kind).toBe('not_found')
      expect(error.message).toContain('"absent"')
    }
  })

  it('dryRun with ifMissing reports the CREATE TABLE and creates nothing', async () => {
    const result = await conn.prepare(
      { table: HOSTILE.table, create: 'ifMissing' },
      { schema: MYSQL, dryRun: true },
    )
    expect(result.existed).toBe(false)
    expect(result.actions).toHaveLength(1)
    expect(result.actions[0]).toMatch(/^CREATE TABLE /)
    const exists = await admin.query('SELECT to_regclass($1) AS r', [
      `${q(ddlSchema)}.${q(HOSTILE.table)}`,
    ])
    expect(exists.rows[0].r).toBeNull()
  })

  it('creates the table from a MySQL schema (hostile names, documented mapping) and writes MySQL values', async () => {
    const stream = { table: HOSTILE.table, create: 'ifMissing' as const, mode: 'append' as const }
    const result = await conn.prepare(stream, { schema: MYSQL })
    expect(result.existed).toBe(false)
    expect(await columnTypes(HOSTILE.table)).toEqual({
      [HOSTILE.id]: 'numeric(20,0) not null',
      tiny: 'smallint',
      u16: 'integer',
      med: 'integer',
      u32: 'bigint',
      [HOSTILE.spaced]: 'numeric(12,3)',
      f32: 'real',
      f64: 'double precision',
      b1: 'bit(1)',
      b64: 'bit(64)',
      [HOSTILE.mixed]: 'character varying(20)',
      body: 'text',
      blob: 'bytea',
      day: 'date',
      span: 'interval(6)',
      wall: 'timestamp(6) without time zone',
      instant: 'timestamp(3) with time zone',
      yr: 'smallint',
      doc: 'json',
      size: 'text',
      tags: 'text',
      uid: 'uuid',
      [LONG]: 'integer',
    })
    const pk = await admin.query(
      `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = $1::regclass AND i.indisprimary`,
      [`${q(ddlSchema)}.${q(HOSTILE.table)}`],
    )
    expect(pk.rows).toEqual([{ name: HOSTILE.id }])
    // Again: it exists now, nothing to do.
    expect(await conn.prepare(stream, { schema: MYSQL })).toEqual({ existed: true, actions: [] })

    const values: Record<string, SqlValue> = {
      [HOSTILE.id]: 18446744073709551615n,
      tiny: -128,
      u16: 65535,
      med: -8388608,
      u32: 4294967295,
      [HOSTILE.spaced]: tagged('decimal', '123456789.125'),
      f32: Math.fround(3.14),
      f64: 1.0000000000000002,
      b1: tagged('bits', '1'),
      b64: tagged('bits', '1'.repeat(64)),
      [HOSTILE.mixed]: 'Ω'.repeat(20),
      body: 'x',
      blob: new Uint8Array([1, 2]),
      day: tagged('date', '2024-02-29'),
      span: tagged('interval', '-838:59:59.000000'),
      wall: tagged('timestamp', '2024-02-29T13:45:00.123456'),
      instant: tagged('timestamptz', '2024-02-29T13:45:00.123Z'),
      yr: 2024,
      doc: tagged('json', '{"k": 1, "k": 2}'),
      size: "l'x",
      tags: 'a,b',
      uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      [LONG]: 7,
    }
    const written = await conn.write(
      stream,
      [record(values), record({ ...values, [HOSTILE.id]: 1n, size: 'xl' })],
      { signal },
    )
    expect(written.written).toBe(1)
    expect(written.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']]) // CHECK of the enum labels
    const got = await admin.query(
      `SELECT ${q(HOSTILE.id)}::text AS id, b64::text, span::text, doc::text, instant::text, size FROM ${q(ddlSchema)}.${q(HOSTILE.table)}`,
    )
    expect(got.rows).toEqual([
      {
        id: '18446744073709551615',
        b64: '1'.repeat(64),
        span: '-838:59:59',
        doc: '{"k": 1, "k": 2}',
        instant: '2024-02-29 13:45:00.123+00',
        size: "l'x",
      },
    ])
  })

  it('creates a missing schema too (create: ifMissing), as pgloader does', async () => {
    const other = uniqueSchema('nvisy_pg_ddl_new')
    try {
      const stream = { table: 't', schema: other, create: 'ifMissing' as const }
      const schema: StreamSchema = {
        system: 'mysql',
        primaryKey: ['id'],
        columns: [
          { name: 'id', nativeType: 'int', type: { type: 'integer', bits: 32 }, nullable: false },
        ],
      }
      const dry = await conn.prepare(stream, { schema, dryRun: true })
      expect(dry.actions[0]).toBe(`CREATE SCHEMA IF NOT EXISTS "${other}"`)
      const exists = async () =>
        (await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [other])).rowCount
      expect(await exists()).toBe(0)
      expect((await conn.prepare(stream, { schema })).actions).toHaveLength(2)
      expect(await exists()).toBe(1)
      expect(await conn.write(stream, [record({ id: 1 })], { signal })).toEqual({
        written: 1,
        failed: [],
      })
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${q(other)} CASCADE`)
    }
  })

  it('refuses names PostgreSQL would truncate (over 63 bytes) and types with no equivalent', async () => {
    const tooLong = await failure(
      conn.prepare(
        { table: 'long_names', create: 'ifMissing' },
        {
          schema: {
            ...MYSQL,
            columns: [{ ...MYSQL.columns[1]!, name: `${LONG}y` }],
            primaryKey: [],
          },
        },
      ),
    )
    expect(tooLong.kind).toBe('config')
    expect(tooLong.message).toContain('64 bytes')
    const other = await failure(
      conn.prepare(
        { table: 'geo', create: 'ifMissing' },
        {
          schema: {
            system: 'mysql',
            primaryKey: [],
            columns: [
              { name: 'shape', nativeType: 'geometry', type: { type: 'other' }, nullable: true },
            ],
          },
        },
      ),
    )
    expect(other.kind).toBe('config')
    expect(other.message).toContain('"shape"')
  })

  it('sees columns added by someone else since the table was cached', async () => {
    await admin.query(`CREATE TABLE ${q(ddlSchema)}.changing (id int PRIMARY KEY)`)
    await conn.write({ table: 'changing' }, [record({ id: 1 })], { signal })
    await admin.query(`ALTER TABLE ${q(ddlSchema)}.changing ADD COLUMN flags bit(2)`)
    expect(
      await conn.write({ table: 'changing' }, [record({ id: 2, flags: 3 })], { signal }),
    ).toEqual({ written: 1, failed: [] })
    const unknown = await failure(
      conn.write({ table: 'changing' }, [record({ id: 3, nope: 1 })], { signal }),
    )
    expect(unknown.kind).toBe('config')
    expect(unknown.message).toContain('"nope"')
  })

  it('evolve: none names the missing columns; addColumns adds them (nullable)', async () => {
    await admin.query(`CREATE TABLE ${q(ddlSchema)}.evolving (id int PRIMARY KEY)`)
    const schema: StreamSchema = {
      system: 'mysql',
      primaryKey: ['id'],
      columns: [
        { name: 'id', nativeType: 'int', type: { type: 'integer', bits: 32 }, nullable: false },
        {
          name: 'New Col',
          nativeType: 'bit(3)',
          type: { type: 'bits', length: 3 },
          nullable: false,
        },
        { name: 'note', nativeType: 'text', type: { type: 'text' }, nullable: true },
      ],
    }
    const refused = await failure(conn.prepare({ table: 'evolving' }, { schema }))
    expect(refused.kind).toBe('config')
    expect(refused.message).toContain('"New Col", "note"')
    const dry = await conn.prepare(
      { table: 'evolving', evolve: 'addColumns' },
      { schema, dryRun: true },
    )
    expect(dry.existed).toBe(true)
    expect(dry.actions).toHaveLength(1)
    expect(await columnTypes('evolving')).toEqual({ id: 'integer not null' })
    await conn.prepare({ table: 'evolving', evolve: 'addColumns' }, { schema })
    expect(await columnTypes('evolving')).toEqual({
      id: 'integer not null',
      'New Col': 'bit(3)',
      note: 'text',
    })
    // The connection sees the new columns at once.
    expect(
      await conn.write({ table: 'evolving' }, [record({ id: 1, 'New Col': 5n, note: 'n' })], {
        signal,
      }),
    ).toEqual({ written: 1, failed: [] })
    expect(
      (await admin.query(`SELECT "New Col"::text AS b FROM ${q(ddlSchema)}.evolving`)).rows,
    ).toEqual([{ b: '101' }])
  })
})
