import { ProviderError, type RecordData } from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  adminPool,
  skipReason,
  TEST_URL,
  testInput,
  uniqueSchema,
} from './__fixtures__/postgres.js'
import { createPostgresProvider, postgresProvider } from './index.js'

const skip = await skipReason()
const schema = uniqueSchema('nvisy_pg')
const admin = adminPool()
const signal = new AbortController().signal
const q = (name: string) => `"${name.replace(/"/g, '""')}"`

// Names a string-built query would trip over: quotes, a statement separator, spaces, unicode.
const HOSTILE_TABLE = `tab"le; DROP TABLE victim; --`
const HOSTILE_ID = `i"d`
const HOSTILE_COLUMN = `va'l"ue; DELETE FROM victim ‽ ünï`

async function collect(
  connection: Awaited<ReturnType<typeof postgresProvider.connect>>,
  stream: unknown,
  after?: unknown,
) {
  return (await readAll(connection, stream, { after })).map((item) => ({
    values: (item.data as RecordData).values,
    context: item.context,
  }))
}

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

describe.skipIf(skip)('postgres provider against PostgreSQL', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA ${q(schema)}`)
    await admin.query(`CREATE TABLE ${q(schema)}.victim (id int PRIMARY KEY)`)
    await admin.query(`INSERT INTO ${q(schema)}.victim VALUES (1), (2)`)
    await admin.query(
      `CREATE TABLE ${q(schema)}.${q(HOSTILE_TABLE)} (${q(HOSTILE_ID)} int PRIMARY KEY, ${q(HOSTILE_COLUMN)} text)`,
    )
    await admin.query(`CREATE TABLE ${q(schema)}.events (
      id int PRIMARY KEY, kind text NOT NULL, updated_at timestamptz NOT NULL, amount int CHECK (amount >= 0))`)
    await admin.query(`INSERT INTO ${q(schema)}.events
      SELECT g, CASE WHEN g % 3 = 0 THEN 'c' WHEN g % 2 = 0 THEN 'b' ELSE 'a' END,
             timestamptz '2024-01-01 00:00:00Z' + ((g % 5) * interval '1 microsecond'), g
      FROM generate_series(1, 50) g`)
    await admin.query(
      `CREATE VIEW ${q(schema)}.events_view AS SELECT id, kind FROM ${q(schema)}.events`,
    )
    await admin.query(`CREATE TABLE ${q(schema)}.pairs (a int, b text, v text, PRIMARY KEY (b, a))`)
  })
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`)
    await admin.end()
  })

  it('quotes hostile table and column names: correct rows, no injection', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const rows = [1, 2, 3].map((i) => ({
      kind: 'record' as const,
      values: { [HOSTILE_ID]: i, [HOSTILE_COLUMN]: `v'${i}"; --` },
    }))
    expect(await connection.write({ table: HOSTILE_TABLE }, rows, { signal })).toEqual({
      written: 3,
      failed: [],
    })
    expect(
      await connection.write(
        { table: HOSTILE_TABLE, mode: 'append' },
        [{ kind: 'record', values: { [HOSTILE_ID]: 4, [HOSTILE_COLUMN]: 'tab\there\\' } }],
        { signal },
      ),
    ).toEqual({ written: 1, failed: [] })
    const read = await collect(connection, {
      table: HOSTILE_TABLE,
      columns: [HOSTILE_COLUMN],
      filter: [{ column: HOSTILE_COLUMN, op: '<>', value: "x'; DROP TABLE victim; --" }],
    })
    expect(read.map((r) => r.values)).toEqual([
      { [HOSTILE_COLUMN]: `v'1"; --` },
      { [HOSTILE_COLUMN]: `v'2"; --` },
      { [HOSTILE_COLUMN]: `v'3"; --` },
      { [HOSTILE_COLUMN]: 'tab\there\\' },
    ])
    expect(read.map((r) => r.context)).toEqual([1, 2, 3, 4].map((i) => ({ cursor: [i] })))
    const victim = await admin.query(`SELECT count(*)::int AS n FROM ${q(schema)}.victim`)
    expect(victim.rows[0].n).toBe(2)
    await connection.close()
  })

  it('filters with parameters, selects columns and pages through a composite key', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const filtered = await collect(connection, {
      table: 'events',
      columns: ['id'],
      pageSize: 3,
      filter: [
        { column: 'kind', op: 'in', value: ['a', 'c'] },
        { column: 'id', op: '<=', value: 12 },
        { column: 'amount', op: 'is not null' },
      ],
    })
    expect(filtered.map((r) => r.values.id)).toEqual([1, 3, 5, 6, 7, 9, 11, 12])
    await admin.query(
      `INSERT INTO ${q(schema)}.pairs VALUES (2, 'x', 'p'), (1, 'y', 'q'), (1, 'x', 'r'), (3, 'a b', 's')`,
    )
    const pairs = await collect(connection, { table: 'pairs', pageSize: 1 })
    expect(pairs.map((r) => r.context)).toEqual([
      { cursor: ['a b', 3] },
      { cursor: ['x', 1] },
      { cursor: ['x', 2] },
      { cursor: ['y', 1] },
    ])
    const rest = await collect(connection, { table: 'pairs' }, pairs[1]!.context)
    expect(rest.map((r) => r.values.v)).toEqual(['p', 'q'])
    await connection.close()
  })

  it('reads incrementally by updated_at with the primary key as tiebreaker (microsecond exact)', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const stream = { table: 'events', cursor: ['updated_at'], columns: ['id', 'updated_at'] }
    const first = await collect(connection, stream)
    expect(first).toHaveLength(50)
    const last = first[first.length - 1]!.context as { cursor: unknown[] }
    expect(last).toEqual({ cursor: ['2024-01-01 00:00:00.000004+00', 49] })
    // Resume mid-way through rows that share one updated_at value.
    const k = 12
    const resumed = await collect(connection, stream, first[k]!.context)
    expect(resumed.map((r) => r.values.id)).toEqual(first.slice(k + 1).map((r) => r.values.id))
    // A changed row and a new row come after the last context; nothing else does.
    await admin.query(
      `UPDATE ${q(schema)}.events SET updated_at = '2024-01-02Z', amount = 1000 WHERE id = 7`,
    )
    await admin.query(
      `INSERT INTO ${q(schema)}.events VALUES (51, 'a', '2024-01-02 00:00:00.000001Z', 0)`,
    )
    const fresh = await collect(connection, stream, JSON.parse(JSON.stringify(last)))
    expect(fresh.map((r) => [r.values.id, r.values.updated_at])).toEqual([
      [7, { $type: 'timestamptz', value: '2024-01-02T00:00:00Z' }],
      [51, { $type: 'timestamptz', value: '2024-01-02T00:00:00.000001Z' }],
    ])
    await connection.close()
  })

  it('reads a view with an explicit cursor, and refuses a view without one', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const rows = await collect(connection, {
      table: 'events_view',
      cursor: ['id'],
      filter: [{ column: 'id', op: '<', value: 4 }],
    })
    expect(rows.map((r) => r.values)).toEqual([
      { id: 1, kind: 'a' },
      { id: 2, kind: 'b' },
      { id: 3, kind: 'c' },
    ])
    const error = await failure(collect(connection, { table: 'events_view' }))
    expect(error.kind).toBe('config')
    expect(error.message).toContain('stream.cursor')
    await connection.close()
  })

  it('discovers tables and views with columns, types and primary keys', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const streams = (await connection.discover()).filter(
      (s) => (s.stream as { schema: string }).schema === schema,
    )
    const events = streams.find((s) => s.name === `${schema}.events`)!
    expect(events.type).toBe('table')
    expect(events.stream).toEqual({ schema, table: 'events' })
    expect(events.fields).toEqual([
      { name: 'id', type: 'integer', nullable: false, primaryKey: true },
      { name: 'kind', type: 'text', nullable: false, primaryKey: false },
      { name: 'updated_at', type: 'timestamp with time zone', nullable: false, primaryKey: false },
      { name: 'amount', type: 'integer', nullable: true, primaryKey: false },
    ])
    expect(streams.find((s) => s.name === `${schema}.events_view`)!.type).toBe('view')
    expect(
      streams
        .find((s) => s.name === `${schema}.pairs`)!
        .fields!.filter((f) => f.primaryKey)
        .map((f) => f.name),
    ).toEqual(['a', 'b'])
    await connection.close()
  })

  it('a bad row fails alone in upsert and in COPY append, with the constraint named', async () => {
    await admin.query(
      `CREATE TABLE ${q(schema)}.sink (id int PRIMARY KEY, amount int CHECK (amount >= 0), note text NOT NULL)`,
    )
    const connection = await postgresProvider.connect(testInput(schema))
    const row = (id: number, amount: unknown, note: unknown = 'n') => ({
      kind: 'record' as const,
      values: { id, amount, note } as any,
    })
    for (const mode of ['upsert', 'append'] as const) {
      await admin.query(`TRUNCATE ${q(schema)}.sink`)
      const result = await connection.write(
        { table: 'sink', mode },
        [row(1, 1), row(2, -5), row(3, 'not a number'), row(4, 4, null), row(5, 5)],
        { signal },
      )
      expect(result.written, mode).toBe(2)
      expect(result.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
        [1, 'data', '23514'],
        [2, 'data', '22P02'],
        [3, 'data', '23502'],
      ])
      expect(result.failed[0]!.error.message).toContain('sink_amount_check')
      expect(result.failed[0]!.error.stream).toBe('sink')
      const stored = await admin.query(`SELECT id FROM ${q(schema)}.sink ORDER BY id`)
      expect(stored.rows.map((r) => r.id)).toEqual([1, 5])
    }
    // Upsert replaces by key; duplicates of one key inside a batch resolve to the last one.
    const again = await connection.write({ table: 'sink' }, [row(1, 10), row(1, 11), row(9, 9)], {
      signal,
    })
    expect(again).toEqual({ written: 3, failed: [] })
    const stored = await admin.query(`SELECT id, amount FROM ${q(schema)}.sink ORDER BY id`)
    expect(stored.rows).toEqual([
      { id: 1, amount: 11 },
      { id: 5, amount: 5 },
      { id: 9, amount: 9 },
    ])
    await connection.close()
  })

  it('classifies unknown tables, columns and databases, naming the table', async () => {
    const connection = await postgresProvider.connect(testInput(schema))
    const missing = await failure(collect(connection, { table: 'no_such_table' }))
    expect(missing.kind).toBe('not_found')
    expect(missing.message).toContain('no_such_table')
    expect(missing.stream).toBe('no_such_table')
    const column = await failure(collect(connection, { table: 'events', columns: ['nope'] }))
    expect(column.kind).toBe('config')
    expect(column.issues?.[0]?.path).toBe('/stream/columns/0')
    const writeMissing = await failure(
      connection.write({ table: 'no_such_table' }, [{ kind: 'record', values: { a: 1 } }], {
        signal,
      }),
    )
    expect(writeMissing.kind).toBe('not_found')
    const badColumn = await failure(
      connection.write({ table: 'events' }, [{ kind: 'record', values: { id: 1, nope: 1 } }], {
        signal,
      }),
    )
    expect(badColumn.kind).toBe('config')
    await connection.close()

    const url = new URL(TEST_URL)
    url.pathname = '/nvisy_no_such_database'
    const other = await postgresProvider.connect({
      credentials: { url: url.toString() },
      params: {},
    })
    const database = await failure(other.check())
    expect(database.kind).toBe('config')
    expect(database.code).toBe('3D000')
    await other.close()
  })

  it('gives transient for a refused connection and for a terminated backend', async () => {
    const refused = await postgresProvider.connect({
      credentials: { user: 'postgres', password: 'secret-pw-123' },
      params: { host: '127.0.0.1', port: 1, database: 'test' },
    })
    const error = await failure(refused.check())
    expect(error.kind).toBe('transient')
    expect(JSON.stringify(error.toJSON())).not.toContain('secret-pw-123')
    await refused.close()

    const connection = await postgresProvider.connect(
      testInput(schema, { applicationName: `nvisy-kill-${schema}` }),
    )
    await admin.query(
      `INSERT INTO ${q(schema)}.events SELECT g, 'z', now(), 1 FROM generate_series(1000, 30000) g`,
    )
    const iterator = connection
      .read({ table: 'events', pageSize: 100 }, { signal })
      [Symbol.asyncIterator]()
    await iterator.next()
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [`nvisy-kill-${schema}`],
    )
    let killed: unknown
    try {
      for (;;) if ((await iterator.next()).done) break
    } catch (e) {
      killed = e
    }
    expect(ProviderError.isInstance(killed)).toBe(true)
    expect((killed as ProviderError).kind).toBe('transient')
    expect((killed as ProviderError).cursor).toBeDefined()
    // The pool recovers with a fresh connection.
    await expect(connection.check()).resolves.toBeUndefined()
    await connection.close()
  })

  it('uses an injected pool, sets the session time zone on it and leaves it open', async () => {
    const pool = new pg.Pool({
      connectionString: TEST_URL,
      max: 1,
      options: '-c TimeZone=Asia/Kolkata',
    })
    const provider = createPostgresProvider({ pool })
    const connection = await provider.connect({ credentials: {}, params: { schema } })
    const rows = await collect(connection, {
      table: 'events',
      columns: ['updated_at'],
      filter: [{ column: 'id', op: '=', value: 1 }],
    })
    expect(rows[0]!.values.updated_at).toEqual({
      $type: 'timestamptz',
      value: '2024-01-01T00:00:00.000001Z',
    })
    await connection.close()
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    await pool.end()
  })

  it('keeps memory flat: pages, not the whole table', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.big (id int PRIMARY KEY, pad text)`)
    await admin.query(
      `INSERT INTO ${q(schema)}.big SELECT g, repeat('x', 1000) FROM generate_series(1, 100000) g`,
    )
    const connection = await postgresProvider.connect(testInput(schema))
    const before = process.memoryUsage().heapUsed
    let count = 0
    let peak = 0
    for await (const _ of connection.read({ table: 'big', pageSize: 500 }, { signal })) {
      if (++count % 5000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - before)
    }
    expect(count).toBe(100_000)
    // 100 MB of rows went through; a page is about 0.5 MB.
    expect(peak).toBeLessThan(40 * 1024 * 1024)
    await connection.close()
  })

  it('COPY append writes multi-byte, escaped and oversized values across chunk boundaries exactly', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.chunks (id int PRIMARY KEY, a text, b text)`)
    // 360k UTF-16 units, about 840 KB of escaped UTF-8: larger than one COPY chunk.
    const big = '€\t\\'.repeat(120_000)
    const values: Record<string, string | number>[] = []
    for (let i = 1; i <= 3000; i++) {
      // Odd rows: keys id, a. Even rows: other keys in another order (the columns are the union).
      values.push(
        i % 2 === 1
          ? { id: i, a: `ü${'x'.repeat(i % 300)}\n\\N ${i}` }
          : { b: i === 1500 ? big : `r\r€${i}`, id: i },
      )
    }
    const connection = await postgresProvider.connect(testInput(schema))
    const result = await connection.write(
      { table: 'chunks', mode: 'append' },
      values.map((v) => ({ kind: 'record', values: v })),
      { signal },
    )
    expect(result).toEqual({ written: 3000, failed: [] })
    const back = await admin.query(`SELECT id, a, b FROM ${q(schema)}.chunks ORDER BY id`)
    expect(back.rows).toEqual(values.map((v) => ({ id: v.id, a: v.a ?? null, b: v.b ?? null })))
    await connection.close()
  })
})
