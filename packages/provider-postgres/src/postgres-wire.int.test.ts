// Pass-through reads against a real PostgreSQL: COPY takes no bind parameters, so a filter's
// values and a resume cursor are inlined as literals. Hostile values (quotes, backslashes, a
// statement after a quote) must stay values, hostile column names stay names, and an
// aborted or abandoned COPY must not leave a connection mid-protocol in the pool.
import {
  COLUMNS_WIRE,
  type Data,
  type RecordData,
  type SqlValue,
  tagged,
} from '@nvisy/provider-core'
import { collect, readAll } from '@nvisy/provider-testkit'
import { to as copyTo } from 'pg-copy-streams'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminPool, skipReason, testInput, uniqueSchema } from './__fixtures__/postgres.js'
import { postgresProvider } from './index.js'
import { COPY_TEXT } from './postgres-wire.js'

const skip = await skipReason()
const schema = uniqueSchema('nvisy_wire')
const admin = adminPool()
const signal = new AbortController().signal
const HOSTILE = `it's $1 "x" \\ '); DROP TABLE "${schema}".t; --`
const NAME = 'na"me $1 \'; --'

const rowsOf = (items: { data: unknown }[]) =>
  items.reduce((n, i) => n + ((i.data as RecordData).wire?.rows ?? 0), 0)
const text = (items: { data: unknown }[]) =>
  Buffer.concat(items.map((i) => Buffer.from((i.data as RecordData).wire!.bytes!))).toString('utf8')

describe.skipIf(skip)('postgres pass-through reads', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA "${schema}"`)
    await admin.query(
      `CREATE TABLE "${schema}".t (id int PRIMARY KEY, "${NAME.replace(/"/g, '""')}" text)`,
    )
    await admin.query(
      `INSERT INTO "${schema}".t SELECT i, CASE WHEN i % 10 = 0 THEN $1 ELSE 'row ' || i END FROM generate_series(1, 1000) i`,
      [HOSTILE],
    )
  })
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  })

  const wire = { format: COPY_TEXT, maxRows: 64, maxBytes: 1 << 20 }

  it('inlines hostile filter values and cursors as literals: the same rows as the row-by-row read, no statement run', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      const stream = {
        table: 't',
        filter: [
          { column: NAME, op: 'in' as const, value: [HOSTILE, "o'clock"] },
          { column: 'id', op: '>' as const, value: 5 },
        ],
      }
      const items = await collect(connection.read(stream, { signal, wire }))
      const rows = await readAll(connection, stream)
      expect(rows).toHaveLength(100)
      expect(rowsOf(items)).toBe(100)
      expect(text(items)).toContain(`\t${HOSTILE.replace(/\\/g, '\\\\')}\n`)
      // Resume after an item: the cursor is inlined too.
      const after = await collect(
        connection.read(stream, { signal, wire, after: items[0]!.context }),
      )
      expect(rowsOf(after)).toBe(100 - 64)
      // Nothing was dropped.
      expect((await admin.query(`SELECT count(*)::int AS n FROM "${schema}".t`)).rows[0].n).toBe(
        1000,
      )
    } finally {
      await connection.close()
    }
  })

  it('an item older than maxAgeMs is cut when more text arrives (a slow source still makes progress)', async () => {
    // Rows of 9 kB are flushed by the server one by one; every 4th row takes 150 ms.
    await admin.query(
      `CREATE VIEW "${schema}".slow AS SELECT id, repeat('x', 9000) AS pad, (SELECT 1 FROM pg_sleep(CASE WHEN id % 4 = 0 THEN 0.15 ELSE 0 END)) AS s FROM "${schema}".t WHERE id <= 16 ORDER BY id`,
    )
    // With statistics the planner reads the primary key in order: rows leave as they are made.
    await admin.query(`ANALYZE "${schema}".t`)
    const connection = await postgresProvider.connect(testInput(schema))
    try {
      const stream = { table: 'slow', cursor: ['id'] }
      const all = await collect(connection.read(stream, { signal, wire }))
      expect(all.map((i) => (i.data as RecordData).wire?.rows)).toEqual([16])
      const timed = await collect(
        connection.read(stream, { signal, wire: { ...wire, maxAgeMs: 100 } }),
      )
      expect(timed.length).toBeGreaterThanOrEqual(3)
      expect(rowsOf(timed)).toBe(16)
      expect(text(timed)).toBe(text(all))
    } finally {
      await connection.close()
    }
  })

  it('a consumer that stops early, or an abort, drops the COPY connection; the pool goes on working', async () => {
    const connection = await postgresProvider.connect(testInput(schema, { poolSize: 1 }))
    try {
      for (let i = 0; i < 3; i++) {
        const iterator = connection.read({ table: 't' }, { signal, wire: { ...wire, maxRows: 1 } })
        for await (const _ of iterator) break
      }
      const controller = new AbortController()
      let seen = 0
      await expect(
        (async () => {
          for await (const _ of connection.read(
            { table: 't' },
            { signal: controller.signal, wire: { ...wire, maxRows: 1 } },
          )) {
            if (++seen === 2) controller.abort(new Error('stop'))
          }
        })(),
      ).rejects.toThrow()
      // With one connection in the pool, a leaked COPY would make this hang or fail.
      expect(rowsOf(await collect(connection.read({ table: 't' }, { signal, wire })))).toBe(1000)
    } finally {
      await connection.close()
    }
  })

  it('reads the bytes COPY prints: rows larger than an item and than a socket read, notices between rows', async () => {
    // Rows of 0.1 to 3 MB (each spans many socket reads); every third row raises a notice,
    // which the server sends between CopyData messages.
    await admin.query(`
      CREATE FUNCTION "${schema}".noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
      BEGIN IF i % 3 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$`)
    await admin.query(
      `CREATE VIEW "${schema}".big AS SELECT id, "${schema}".noisy(id) AS n, repeat(md5(id::text) || E'\\t\n', (id % 7 + 1) * 5000) AS pad FROM "${schema}".t WHERE id <= 40`,
    )
    const connection = await postgresProvider.connect(testInput(schema, { poolSize: 1 }))
    try {
      const stream = { table: 'big', cursor: ['id'] }
      const items = await collect(
        connection.read(stream, { signal, wire: { ...wire, maxRows: 1000, maxBytes: 1 << 20 } }),
      )
      // The reference: pg-copy-streams' reader, over the same query.
      const client = await admin.connect()
      let expected: Buffer
      try {
        const chunks: Buffer[] = []
        const copy = client.query(
          copyTo(`COPY (SELECT id, n, pad FROM "${schema}".big ORDER BY id) TO STDOUT`),
        )
        for await (const chunk of copy) chunks.push(chunk as Buffer)
        expected = Buffer.concat(chunks)
      } finally {
        client.release()
      }
      expect(expected.length).toBeGreaterThan(40 * 150_000)
      expect(rowsOf(items)).toBe(40)
      expect(Buffer.compare(Buffer.from(text(items), 'utf8'), expected)).toBe(0)
      // Items end at rows and stay within maxBytes unless one row is larger.
      for (const item of items) {
        const bytes = (item.data as RecordData).wire!.bytes!
        expect(bytes[bytes.length - 1]).toBe(0x0a)
        if ((item.data as RecordData).wire!.rows > 1)
          expect(bytes.length).toBeLessThanOrEqual(1 << 20)
      }
      expect(items.at(-1)!.context).toEqual({ cursor: [40] })
      // Written back as they are: items of up to 1.3 MB go as CopyData messages of 256 kB,
      // cut in the middle of rows; the table holds the same rows.
      await admin.query(`CREATE TABLE "${schema}".big_copy (id int PRIMARY KEY, n int, pad text)`)
      const sink = { table: 'big_copy', mode: 'append' as const }
      const offer = await connection.wireOffer(stream, COPY_TEXT)
      if ('reason' in offer) throw new Error(offer.reason)
      expect(await connection.acceptWire(sink, offer)).toEqual({ accepted: true })
      const written = await connection.write(
        sink,
        items.map((i) => i.data as Data),
        { signal, wire: COPY_TEXT },
      )
      expect(written).toEqual({ written: 40, failed: [] })
      const digest = async (from: string) =>
        (
          await admin.query(
            `SELECT md5(string_agg(id || ':' || n || ':' || pad, E'\\n' ORDER BY id)) AS d FROM "${schema}".${from}`,
          )
        ).rows[0].d
      expect(await digest('big_copy')).toBe(await digest('big'))
    } finally {
      await connection.close()
    }
  })

  it('an error in the middle of a COPY fails the read with the server error; the connection goes on working', async () => {
    await admin.query(`
      CREATE FUNCTION "${schema}".boom(i int) RETURNS int LANGUAGE plpgsql AS $$
      BEGIN IF i = 700 THEN RAISE EXCEPTION 'boom at %', i USING ERRCODE = '22012'; END IF; RETURN i; END $$`)
    await admin.query(
      `CREATE VIEW "${schema}".failing AS SELECT id, "${schema}".boom(id) AS b, repeat('y', 200) AS pad FROM "${schema}".t`,
    )
    const connection = await postgresProvider.connect(testInput(schema, { poolSize: 1 }))
    try {
      const seen: number[] = []
      const read = (async () => {
        for await (const item of connection.read(
          { table: 'failing', cursor: ['id'] },
          { signal, wire: { ...wire, maxRows: 100 } },
        ))
          seen.push((item.data as RecordData).wire!.rows)
      })()
      await expect(read).rejects.toMatchObject({ message: expect.stringContaining('boom at 700') })
      // Whole items before the failing row may have been handed over; never a part of a row.
      expect(seen.every((rows) => rows === 100)).toBe(true)
      expect(seen.length).toBeLessThanOrEqual(6)
      // With one connection in the pool, a connection left mid-COPY would fail this read.
      expect(rowsOf(await collect(connection.read({ table: 't' }, { signal, wire })))).toBe(1000)
    } finally {
      await connection.close()
    }
  })

  it('writes nvisy-columns batches in both modes; a value or row the destination refuses fails alone, as a record', async () => {
    await admin.query(
      `CREATE TABLE "${schema}".cols (id bigint PRIMARY KEY, amount numeric(6,2), note varchar(5) CHECK (note <> 'bad'))`,
    )
    const connection = await postgresProvider.connect(testInput(schema))
    const item = (ids: number[], amounts: SqlValue[], notes: SqlValue[]): Data => ({
      kind: 'record',
      values: {},
      wire: {
        format: COLUMNS_WIRE,
        columns: ['id', 'amount', 'note'],
        rows: ids.length,
        values: [ids.map((i) => BigInt(i)), amounts, notes],
      },
    })
    const dec = (value: string) => tagged('decimal', value)
    try {
      const append = await connection.write(
        { table: 'cols', mode: 'append' },
        [
          item(
            [1, 2, 3, 4],
            [dec('1.50'), dec('12345.678'), dec('3'), null],
            ['a', 'b', 'bad', null],
          ),
        ],
        { signal, wire: COLUMNS_WIRE },
      )
      expect(append.written).toBe(2)
      // Row 1's amount cannot be held by numeric(6,2) exactly; row 2 breaks the CHECK.
      expect(append.failed.map((f) => [f.index, f.error.kind, f.data])).toEqual([
        [0, 'data', { kind: 'record', values: { id: 2n, amount: dec('12345.678'), note: 'b' } }],
        [0, 'data', { kind: 'record', values: { id: 3n, amount: dec('3'), note: 'bad' } }],
      ])
      expect(append.failed[1]!.error.message).toContain('row 2 rejected')
      const upsert = await connection.write(
        { table: 'cols', mode: 'upsert' },
        [item([1, 5], [dec('9.99'), dec('0.01')], ['z', 'e'])],
        { signal, wire: COLUMNS_WIRE },
      )
      expect(upsert).toEqual({ written: 2, failed: [] })
    } finally {
      await connection.close()
    }
    const rows = await admin.query(
      `SELECT id::text, amount::text, note FROM "${schema}".cols ORDER BY id`,
    )
    expect(rows.rows).toEqual([
      { id: '1', amount: '9.99', note: 'z' },
      { id: '4', amount: null, note: null },
      { id: '5', amount: '0.01', note: 'e' },
    ])
  })
})
