import { COLUMNS_WIRE, columnsRecord, type RecordData, type SqlValue } from '@nvisy/provider-core'
import { collect, readAll as readItems } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminPool, skipReason, testInput, uniqueSchema } from './__fixtures__/postgres.js'
import { postgresProvider } from './index.js'
import { describeTable } from './postgres-catalog.js'
import { COPY_TEXT, recordFromLine } from './postgres-wire.js'

const skip = await skipReason()
const schema = uniqueSchema('nvisy_types')
const admin = adminPool()
const signal = new AbortController().signal

// Every type the README's mapping names, with edge values: precision limits, microseconds,
// infinities, NaN, -0, unicode, quotes and backslashes, empty and nested arrays, NULLs.
const COLUMNS = `
  id bigint PRIMARY KEY,
  c_int2 smallint, c_int4 integer, c_int8 bigint,
  c_numeric numeric, c_numeric_scaled numeric(20,6),
  c_float4 real, c_float8 double precision,
  c_bool boolean, c_text text, c_varchar varchar(40), c_char char(5), c_uuid uuid, c_mood mood,
  c_bytea bytea,
  c_date date, c_time time, c_timetz timetz, c_timestamp timestamp(6), c_timestamptz timestamptz,
  c_interval interval, c_json json, c_jsonb jsonb,
  c_int4_arr integer[], c_int8_arr bigint[], c_text_arr text[], c_numeric_arr numeric[],
  c_ts_arr timestamptz[], c_bytea_arr bytea[], c_jsonb_arr jsonb[], c_int_matrix integer[][],
  c_inet inet, c_bit1 bit(1), c_bit64 bit(64), c_varbit varbit(10), c_num102 numeric(10,2)`

const ROWS = `
(1, -32768, -2147483648, -9223372036854775808, '-12345678901234567890.123456789012345678901234', '0.000001',
 '-3.4028235e+38', '1.7976931348623157e+308', true, 'plain', 'vär"char''s', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
 '\\x00ff10', '2024-02-29', '13:45:00.123456', '13:45:00.123456+02:30', '2024-02-29 13:45:00.123456', '2024-02-29 13:45:00.123456+00',
 '1 year 2 mons 3 days 04:05:06.789', '{ "b" : 1,  "a": [1, 2.50] }', '{"b": 1, "a": [1, 2.50], "big": 12345678901234567890}',
 '{1,NULL,3}', '{9223372036854775807,-1}', '{"a,b","c\\"d","e\\\\f",NULL,"NULL",""}', '{1.10,NaN}',
 '{"2024-01-01 00:00:00.000001+00",infinity}', '{"\\\\x01",NULL}', '{"{\\"k\\": [1]}"}', '{{1,2},{3,4}}', '192.168.0.1/24',
 B'1', B'1000000000000000000000000000000000000000000000000000000000000001', B'101', '12345678.91'),
(2, 32767, 2147483647, 9223372036854775807, 'NaN', '99999999999999.999999',
 'NaN', '-0', false, E'tab\\there\\nnew line\\\\ back 😀 Ω', '', 'x', '00000000-0000-0000-0000-000000000000', 'sad',
 '\\x', '0044-03-15 BC', '24:00:00', '00:00:00-14', 'infinity', '-infinity',
 '-00:00:00.000001', '"text"', 'null', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '::1',
 B'0', B'0000000000000000000000000000000000000000000000000000000000000000', B'', '-0.01'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 0, 0, 0, '0', '0', '1.1', '0.1', true, 'x', 'y', 'z', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ok',
 '\\xdeadbeef', '10000-12-31', '00:00:00', '23:59:59.999999+14', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00.5+05:30',
 '0', '[]', '{}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{{NULL}}', '10.0.0.0/8',
 B'1', B'1111111111111111111111111111111111111111111111111111111111111111', B'1111111111', '0.00')`

async function md5(table: string): Promise<string> {
  const result = await admin.query<{ md5: string; n: string }>(
    `SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) AS md5, count(*) AS n FROM "${schema}"."${table}" t`,
  )
  return `${result.rows[0]!.n}:${result.rows[0]!.md5}`
}

describe.skipIf(skip)('postgres type mapping and exact copy', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA "${schema}"`)
    await admin.query(`CREATE TYPE "${schema}".mood AS ENUM ('happy', 'sad', 'ok')`)
    await admin.query(`SET search_path = "${schema}"`)
    for (const table of ['source', 'target_upsert', 'target_copy', 'target_wire', 'target_other']) {
      await admin.query(
        `CREATE TABLE "${schema}"."${table}" (${COLUMNS.replace(' mood,', ` "${schema}".mood,`)})`,
      )
    }
    await admin.query(`INSERT INTO "${schema}".source VALUES ${ROWS}`)
    await admin.query(
      `ALTER TABLE "${schema}".target_other ALTER COLUMN c_num102 TYPE numeric(12,2), ADD COLUMN extra money`,
    )
  })
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  })

  async function readAll(table: string): Promise<RecordData[]> {
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      return (await readItems(connection, { table })).map((item) => item.data as RecordData)
    } finally {
      await connection.close()
    }
  }

  it('maps every type per OID, row by row', async () => {
    const rows = await readAll('source')
    expect(rows.map((r) => r.values.id)).toEqual([1n, 2n, 3n, 4n])
    const [r1, r2, r3, r4] = rows.map((r) => r.values) as Record<string, SqlValue>[]
    expect(r1).toEqual({
      id: 1n,
      c_int2: -32768,
      c_int4: -2147483648,
      c_int8: -9223372036854775808n,
      c_numeric: { $type: 'decimal', value: '-12345678901234567890.123456789012345678901234' },
      c_numeric_scaled: { $type: 'decimal', value: '0.000001' },
      c_float4: -3.4028235e38,
      c_float8: 1.7976931348623157e308,
      c_bool: true,
      c_text: 'plain',
      c_varchar: 'vär"char\'s',
      c_char: 'ab   ',
      c_uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      c_mood: 'happy',
      c_bytea: new Uint8Array([0, 255, 16]),
      c_date: { $type: 'date', value: '2024-02-29' },
      c_time: { $type: 'time', value: '13:45:00.123456' },
      c_timetz: { $type: 'time', value: '13:45:00.123456+02:30' },
      c_timestamp: { $type: 'timestamp', value: '2024-02-29T13:45:00.123456' },
      c_timestamptz: { $type: 'timestamptz', value: '2024-02-29T13:45:00.123456Z' },
      c_interval: { $type: 'interval', value: '1 year 2 mons 3 days 04:05:06.789' },
      c_json: { $type: 'json', value: '{ "b" : 1,  "a": [1, 2.50] }' },
      c_jsonb: { $type: 'json', value: '{"a": [1, 2.50], "b": 1, "big": 12345678901234567890}' },
      c_int4_arr: [1, null, 3],
      c_int8_arr: [9223372036854775807n, -1n],
      c_text_arr: ['a,b', 'c"d', 'e\\f', null, 'NULL', ''],
      c_numeric_arr: [
        { $type: 'decimal', value: '1.10' },
        { $type: 'decimal', value: 'NaN' },
      ],
      c_ts_arr: [
        { $type: 'timestamptz', value: '2024-01-01T00:00:00.000001Z' },
        { $type: 'timestamptz', value: 'infinity' },
      ],
      c_bytea_arr: [new Uint8Array([1]), null],
      c_jsonb_arr: [{ $type: 'json', value: '{"k": [1]}' }],
      c_int_matrix: [
        [1, 2],
        [3, 4],
      ],
      c_inet: '192.168.0.1/24',
      c_bit1: { $type: 'bits', value: '1' },
      c_bit64: { $type: 'bits', value: `1${'0'.repeat(62)}1` },
      c_varbit: { $type: 'bits', value: '101' },
      c_num102: { $type: 'decimal', value: '12345678.91' },
    })
    expect(r2!.c_varbit).toEqual({ $type: 'bits', value: '' })
    expect(r2!.c_float4).toBeNaN()
    expect(Object.is(r2!.c_float8, -0)).toBe(true)
    expect(r2!.c_numeric).toEqual({ $type: 'decimal', value: 'NaN' })
    expect(r2!.c_text).toBe('tab\there\nnew line\\ back 😀 Ω')
    expect(r2!.c_bytea).toEqual(new Uint8Array([]))
    expect(r2!.c_date).toEqual({ $type: 'date', value: '0044-03-15 BC' })
    expect(r2!.c_timestamp).toEqual({ $type: 'timestamp', value: 'infinity' })
    expect(r2!.c_timestamptz).toEqual({ $type: 'timestamptz', value: '-infinity' })
    expect(r2!.c_json).toEqual({ $type: 'json', value: '"text"' })
    expect(r2!.c_jsonb).toEqual({ $type: 'json', value: 'null' })
    expect(r2!.c_int_matrix).toEqual([])
    expect(
      Object.entries(r3!)
        .filter(([k]) => k !== 'id')
        .every(([, v]) => v === null),
    ).toBe(true)
    expect(r4!.c_float4).toBe(1.1)
    expect(r4!.c_date).toEqual({ $type: 'date', value: '10000-12-31' })
    expect(r4!.c_timestamptz).toEqual({ $type: 'timestamptz', value: '1969-12-31T18:30:00.5Z' })
    expect(r4!.c_int_matrix).toEqual([[null]])
  })

  for (const mode of ['upsert', 'append'] as const) {
    it(`copies PostgreSQL -> PostgreSQL exactly through read and ${mode} write (md5 of every row)`, async () => {
      const target = mode === 'upsert' ? 'target_upsert' : 'target_copy'
      const rows = await readAll('source')
      const connection = await postgresProvider.connect(testInput(schema))
      try {
        const result = await connection.write({ table: target, mode }, rows, { signal })
        expect(result).toEqual({ written: 4, failed: [] })
      } finally {
        await connection.close()
      }
      expect(await md5(target)).toBe(await md5('source'))
      // And the copy reads back to the same values.
      expect(await readAll(target)).toEqual(rows)
    })
  }

  it('reads as COPY text that decodes to the row-by-row values (every type), and writes it as it is: md5 equal', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const client = await admin.connect()
    try {
      const offer = await connection.wireOffer({ table: 'source' }, COPY_TEXT)
      if ('reason' in offer) throw new Error(offer.reason)
      expect(offer.columns[0]).toBe('id')
      expect(offer.columns).toHaveLength(36)
      const sink = { table: 'target_wire', mode: 'append' as const }
      expect(await connection.acceptWire(sink, offer)).toEqual({ accepted: true })

      const wire = { format: COPY_TEXT, maxRows: 3, maxBytes: 1 << 20 }
      const items = await collect(connection.read({ table: 'source' }, { signal, wire }))
      const rows = await readItems(connection, { table: 'source' })
      expect(items.map((i) => (i.data as RecordData).wire?.rows)).toEqual([3, 1])
      // Each item carries the context of its last row, as the row-by-row read gives it.
      expect(items.map((i) => i.context)).toEqual([rows[2]!.context, rows[3]!.context])
      const table = (await describeTable(client, schema, 'source'))!
      const decoded = items.flatMap((item) => {
        const bytes = Buffer.from((item.data as RecordData).wire!.bytes!)
        const lines = bytes.toString('latin1').split('\n').slice(0, -1)
        let at = 0
        return lines.map((line) => {
          const record = recordFromLine(table, offer.columns, bytes.subarray(at, at + line.length))
          at += line.length + 1
          return record.values
        })
      })
      expect(decoded).toEqual(rows.map((r) => (r.data as RecordData).values))

      const result = await connection.write(
        sink,
        items.map((i) => i.data),
        { signal, wire: COPY_TEXT },
      )
      expect(result).toEqual({ written: 4, failed: [] })
      // A bound of one byte cuts after every row.
      const single = await collect(
        connection.read(
          { table: 'source' },
          { signal, wire: { ...wire, maxRows: 100, maxBytes: 1 } },
        ),
      )
      expect(single.map((i) => (i.data as RecordData).wire?.rows)).toEqual([1, 1, 1, 1])
    } finally {
      client.release()
      await connection.close()
    }
    expect(await md5('target_wire')).toBe(await md5('source'))
  })

  it('reads in nvisy-columns batches that hold the row-by-row values (every type), and writes them in both modes: md5 equal', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      const offer = await connection.wireOffer({ table: 'source', pageSize: 3 }, COLUMNS_WIRE)
      if ('reason' in offer) throw new Error(offer.reason)
      const wire = { format: COLUMNS_WIRE, maxRows: 3, maxBytes: 1 << 20 }
      const items = await collect(
        connection.read({ table: 'source', pageSize: 3 }, { signal, wire }),
      )
      const rows = await readItems(connection, { table: 'source' })
      const batches = items.map((i) => (i.data as RecordData).wire!)
      expect(batches.map((w) => w.rows)).toEqual([3, 1])
      expect(batches[0]!.columns).toEqual(offer.columns)
      expect(items.map((i) => i.context)).toEqual([rows[2]!.context, rows[3]!.context])
      const decoded = batches.flatMap((w) =>
        Array.from({ length: w.rows }, (_, r) => columnsRecord(w, r).values),
      )
      expect(decoded).toEqual(rows.map((r) => (r.data as RecordData).values))
      // Columns of tagged values travel as their text (WireRows.tags), tagged again when read.
      const first = batches[0]!
      const tagOf = (name: string) => first.tags?.[first.columns.indexOf(name)]
      expect(tagOf('c_numeric')).toBe('decimal')
      expect(tagOf('c_bit64')).toBe('bits')
      expect(tagOf('c_text')).toBeUndefined()
      expect(tagOf('c_numeric_arr')).toBeUndefined()
      for (const [c, tag] of (first.tags ?? []).entries())
        if (tag !== undefined)
          expect(first.values![c]!.every((v) => v === null || typeof v === 'string')).toBe(true)
      for (const mode of ['append', 'upsert'] as const) {
        await admin.query(`TRUNCATE "${schema}".target_wire`)
        const result = await connection.write(
          { table: 'target_wire', mode },
          items.map((i) => i.data),
          { signal, wire: COLUMNS_WIRE },
        )
        expect(result).toEqual({ written: 4, failed: [] })
        expect(await md5('target_wire')).toBe(await md5('source'))
      }
    } finally {
      await connection.close()
    }
  })

  it('refuses pass-through to a column of another type or a money column, naming it; a write never takes COPY text unasked', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      const offer = await connection.wireOffer({ table: 'source' }, COPY_TEXT)
      if ('reason' in offer) throw new Error(offer.reason)
      expect(await connection.acceptWire({ table: 'target_other', mode: 'append' }, offer)).toEqual(
        {
          accepted: false,
          reason:
            'column "c_num102" is numeric(12,2) in the destination and numeric(10,2) in the source',
        },
      )
      expect(await connection.wireOffer({ table: 'target_other' }, COPY_TEXT)).toEqual({
        reason: 'column "extra" is money, whose text depends on lc_monetary',
      })
      expect(
        await connection.wireOffer({ table: 'source', columns: ['c_text'] }, COPY_TEXT),
      ).toEqual({ reason: 'cursor column "id" is not among stream.columns' })
      const items = await collect(
        connection.read(
          { table: 'source' },
          { signal, wire: { format: COPY_TEXT, maxRows: 10, maxBytes: 1 << 20 } },
        ),
      )
      // COPY text in a write that does not say so fails item by item, and nothing is written.
      const result = await connection.write(
        { table: 'target_wire', mode: 'append' },
        items.map((i) => i.data),
        { signal },
      )
      expect(result.written).toBe(0)
      expect(result.failed.map((f) => f.error.message)).toEqual([
        expect.stringContaining(
          'holds "postgresql-copy-text" rows; this write takes decoded records',
        ),
      ])
    } finally {
      await connection.close()
    }
  })

  it('describes the table in portable types, and a table created by prepare receives an exact copy', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      const described = await connection.describeStream({ table: 'source' })
      expect(described.system).toBe('postgres')
      expect(described.primaryKey).toEqual(['id'])
      const types = Object.fromEntries(described.columns.map((c) => [c.name, c.type]))
      expect(types).toMatchObject({
        id: { type: 'integer', bits: 64 },
        c_int2: { type: 'integer', bits: 16 },
        c_numeric: { type: 'decimal' },
        c_numeric_scaled: { type: 'decimal', precision: 20, scale: 6 },
        c_num102: { type: 'decimal', precision: 10, scale: 2 },
        c_float4: { type: 'float', bits: 32 },
        c_varchar: { type: 'text', maxLength: 40 },
        c_char: { type: 'text', maxLength: 5, fixed: true },
        c_bit1: { type: 'bits', length: 1 },
        c_bit64: { type: 'bits', length: 64 },
        c_varbit: { type: 'bits', length: 10, varying: true },
        c_mood: { type: 'enum', values: ['happy', 'sad', 'ok'] },
        c_timestamp: { type: 'timestamp', precision: 6, withTimeZone: false },
        c_timestamptz: { type: 'timestamp', withTimeZone: true },
        c_timetz: { type: 'time', withTimeZone: true },
        c_interval: { type: 'duration' },
        c_json: { type: 'json' },
        c_jsonb: { type: 'json', binary: true },
        c_uuid: { type: 'uuid' },
        c_int8_arr: { type: 'array', of: { type: 'integer', bits: 64 } },
        c_inet: { type: 'other' },
      })
      expect(described.columns.find((c) => c.name === 'c_inet')?.nativeType).toBe('inet')
      expect(described.columns.find((c) => c.name === 'id')?.nullable).toBe(false)

      const stream = {
        table: 'target_created',
        create: 'ifMissing' as const,
        mode: 'append' as const,
      }
      const prepared = await connection.prepare(stream, { schema: described })
      expect(prepared.existed).toBe(false)
      const rows = await readAll('source')
      expect(await connection.write(stream, rows, { signal })).toEqual({ written: 4, failed: [] })
    } finally {
      await connection.close()
    }
    expect(await md5('target_created')).toBe(await md5('source'))
    // Same declared types (enums become text with a CHECK of their labels).
    const types = async (table: string) =>
      (
        await admin.query<{ t: string }>(
          `SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS t
           FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
          [`"${schema}"."${table}"`],
        )
      ).rows[0]!.t
    expect(await types('target_created')).toBe(
      (await types('source')).replace(/c_mood [^,]*mood/, 'c_mood text'),
    )
  })
})
