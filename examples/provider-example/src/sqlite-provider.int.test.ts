import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type Data,
  type GuardedConnection,
  ProviderError,
  type ReadItem,
  type RecordData,
  tagged,
} from '@nvisy/provider-core'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { quoteIdent } from './sqlite-catalog.js'
import { createSqliteProvider, sqliteProvider } from './sqlite-provider.js'
import type { SqliteContext } from './sqlite-schemas.js'

const root = mkdtempSync(join(tmpdir(), 'nvisy-sqlite-int-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let dir: string
let path: string
let db: Database.Database
const open: GuardedConnection[] = []

beforeEach(() => {
  dir = mkdtempSync(join(root, 'case-'))
  path = join(dir, 'test.db')
  db = new Database(path)
})
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()))
  db.close()
})

async function connect(params: Record<string, unknown> = {}): Promise<GuardedConnection> {
  const connection = await sqliteProvider.connect({ credentials: {}, params: { path, ...params } })
  open.push(connection)
  return connection
}

async function readAll(
  connection: GuardedConnection,
  stream: Record<string, unknown>,
  after?: unknown,
): Promise<ReadItem<SqliteContext>[]> {
  const items: ReadItem<SqliteContext>[] = []
  for await (const item of connection.read(stream, {
    after,
    signal: new AbortController().signal,
  })) {
    items.push(item)
  }
  return items
}

function values(items: ReadItem[]): Record<string, unknown>[] {
  return items.map((item) => (item.data as RecordData).values)
}

function record(values: Record<string, unknown>): Data {
  return { kind: 'record', values: values as never }
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

const signal = () => new AbortController().signal

describe('type mapping', () => {
  it('reads each storage class as its SqlValue, and 64-bit integers exactly', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v)')
    const insert = db.prepare('INSERT INTO t VALUES (?, ?)')
    insert.run(1, 42n)
    insert.run(2, 9223372036854775807n)
    insert.run(3, -9223372036854775808n)
    insert.run(4, 9007199254740991n)
    insert.run(5, 9007199254740992n)
    insert.run(6, 1.5)
    insert.run(7, Buffer.from([0, 1, 255]))
    insert.run(8, 'héllo ✓')
    insert.run(9, null)
    db.exec("INSERT INTO t VALUES (10, 1e999), (11, -1e999), (12, x'')")
    const connection = await connect()
    const got = values(await readAll(connection, { table: 't' })).map((v) => v.v)
    expect(got).toEqual([
      42,
      9223372036854775807n,
      -9223372036854775808n,
      9007199254740991,
      9007199254740992n,
      1.5,
      new Uint8Array([0, 1, 255]),
      'héllo ✓',
      null,
      Infinity,
      -Infinity,
      new Uint8Array([]),
    ])
    expect(typeof got[0]).toBe('number')
    expect(typeof got[4]).toBe('bigint')
    expect(Buffer.isBuffer(got[6])).toBe(false)
    expect(got[6]).toBeInstanceOf(Uint8Array)
  })

  it('writes each SqlValue as its storage class and reads it back equal', async () => {
    // An untyped column has no affinity: what is stored is exactly what was bound. (A column
    // declared ANY has NUMERIC affinity and would turn numeric-looking text into a REAL.)
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v)')
    const input: unknown[] = [
      0,
      -7,
      2.25,
      -0.5,
      9223372036854775807n,
      -9223372036854775808n,
      'text',
      '',
      new Uint8Array([1, 2, 3]),
      null,
      true,
      false,
      tagged('decimal', '12345678901234567890.000001'),
      tagged('timestamptz', '2024-02-29T13:45:00.123456Z'),
      tagged('json', '{"a": [1, 2]}'),
      [1, 'two', null],
    ]
    const connection = await connect()
    const result = await connection.write(
      { table: 't' },
      input.map((v, id) => record({ id, v })),
      { signal: signal() },
    )
    expect(result).toEqual({ written: input.length, failed: [] })
    const stored = db.prepare('SELECT typeof(v) FROM t ORDER BY id').pluck().all() as string[]
    expect(stored).toEqual([
      'integer',
      'integer',
      'real',
      'real',
      'integer',
      'integer',
      'text',
      'text',
      'blob',
      'null',
      'integer',
      'integer',
      'text',
      'text',
      'text',
      'text',
    ])
    const back = values(await readAll(connection, { table: 't', columns: ['v'] })).map((v) => v.v)
    expect(back).toEqual([
      0,
      -7,
      2.25,
      -0.5,
      9223372036854775807n,
      -9223372036854775808n,
      'text',
      '',
      new Uint8Array([1, 2, 3]),
      null,
      1,
      0,
      '12345678901234567890.000001',
      '2024-02-29T13:45:00.123456Z',
      '{"a": [1, 2]}',
      '[1,"two",null]',
    ])
  })

  it('refuses an integer beyond 64 bits as a data failure of that row only', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY)')
    const connection = await connect()
    const result = await connection.write(
      { table: 't' },
      [record({ id: 1, v: 1 }), record({ id: 2, v: 2n ** 64n }), record({ id: 3, v: 3 })],
      { signal: signal() },
    )
    expect(result.written).toBe(2)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
    expect(db.prepare('SELECT id FROM t ORDER BY id').pluck().all()).toEqual(
      [1, 2, 3].filter((i) => i !== 2),
    )
  })
})

describe('hostile identifiers', () => {
  const table = 'ta"ble; DROP TABLE victim; --'
  const column = `co"l'umn) VALUES (1); --`
  const key = 'k"ey'

  beforeEach(() => {
    db.exec(`
      CREATE TABLE victim (x INTEGER); INSERT INTO victim VALUES (1);
      CREATE TABLE ${quoteIdent(table)} (${quoteIdent(key)} TEXT PRIMARY KEY, ${quoteIdent(column)} INTEGER);
    `)
  })

  it('writes, upserts and reads tables and columns with quotes and SQL in their names', async () => {
    const connection = await connect()
    const write = (rows: [string, number][]) =>
      connection.write(
        { table, keys: [key] },
        rows.map(([k, v]) => record({ [key]: k, [column]: v })),
        { signal: signal() },
      )
    expect(
      await write([
        ['a', 1],
        ['b"; --', 2],
      ]),
    ).toEqual({ written: 2, failed: [] })
    expect(await write([['a', 10]])).toEqual({ written: 1, failed: [] })
    const items = await readAll(connection, { table, columns: [column], cursor: [column] })
    expect(values(items)).toEqual([{ [column]: 2 }, { [column]: 10 }])
    expect(items.map((i) => i.context)).toEqual([{ cursor: [2, 'b"; --'] }, { cursor: [10, 'a'] }])
    const resumed = await readAll(connection, { table, cursor: [column] }, items[0]!.context)
    expect(values(resumed)).toEqual([{ [key]: 'a', [column]: 10 }])
    expect(db.prepare('SELECT count(*) FROM victim').pluck().get()).toBe(1)
    const streams = await connection.discover()
    expect(streams.map((s) => s.name).sort()).toEqual([table, 'victim'].sort())
    const info = streams.find((s) => s.name === table)!
    expect(info.stream).toEqual({ table })
    expect(info.fields).toEqual([
      { name: key, type: 'TEXT', nullable: true, primaryKey: true },
      { name: column, type: 'INTEGER', nullable: true, primaryKey: false },
    ])
  })
})

describe('reading', () => {
  it('pages through a table, resumes exactly after any row, and lets the event loop run between pages', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)')
    const insert = db.prepare('INSERT INTO t VALUES (?, ?)')
    db.transaction(() => {
      for (let i = 1; i <= 1000; i++) insert.run(i * 3, `row ${i}`)
    })()
    const connection = await connect()
    // A self-rearming setImmediate counts event-loop turns. Within a page the items come from
    // memory (microtasks only); between pages the read yields to the event loop.
    let turns = 0
    let running = true
    const spin = () => {
      turns++
      if (running) setImmediate(spin)
    }
    setImmediate(spin)
    const seen: number[] = []
    const turnAtItem: number[] = []
    for await (const item of connection.read({ table: 't', pageSize: 100 }, { signal: signal() })) {
      seen.push((item.data as RecordData).values.id as number)
      turnAtItem.push(turns)
    }
    running = false
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => (i + 1) * 3))
    const pageStarts = turnAtItem.flatMap((turn, i) =>
      i > 0 && turn !== turnAtItem[i - 1] ? [i] : [],
    )
    expect(pageStarts).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900])

    const all = await readAll(connection, { table: 't', pageSize: 100 })
    for (const k of [0, 99, 100, 101, 998]) {
      const rest = await readAll(connection, { table: 't', pageSize: 100 }, all[k]!.context)
      expect(values(rest).map((v) => v.id)).toEqual(seen.slice(k + 1))
    }
  })

  it('uses the rowid when a table has no primary key, and text, blob and bigint cursors resume exactly', async () => {
    db.exec(`
      CREATE TABLE plain (name TEXT);
      INSERT INTO plain VALUES ('c'), ('a'), ('b');
      CREATE TABLE keyed (k ANY PRIMARY KEY, n INTEGER) WITHOUT ROWID;
    `)
    const insert = db.prepare('INSERT INTO keyed VALUES (?, ?)')
    const keys = [
      -9223372036854775808n,
      -5n,
      9007199254740993n,
      9223372036854775807n,
      1.5,
      'A',
      'a',
      'é',
      Buffer.from([0]),
      Buffer.from([0, 0]),
      Buffer.from([255]),
    ]
    for (const [n, k] of keys.entries()) insert.run(k, n)
    const connection = await connect()

    const plain = await readAll(connection, { table: 'plain', pageSize: 2 })
    expect(values(plain)).toEqual([{ name: 'c' }, { name: 'a' }, { name: 'b' }])
    expect(plain.map((i) => i.context)).toEqual([{ cursor: [1] }, { cursor: [2] }, { cursor: [3] }])

    const items = await readAll(connection, { table: 'keyed', pageSize: 3 })
    // SQLite's order: integers and reals by value, then text, then blobs.
    expect(values(items).map((v) => v.n)).toEqual([0, 1, 4, 2, 3, 5, 6, 7, 8, 9, 10])
    expect(items.map((i) => i.context.cursor[0])).toEqual([
      { int: '-9223372036854775808' },
      -5,
      1.5,
      { int: '9007199254740993' },
      { int: '9223372036854775807' },
      'A',
      'a',
      'é',
      { blob: 'AA==' },
      { blob: 'AAA=' },
      { blob: '/w==' },
    ])
    for (let k = 0; k < items.length; k++) {
      const after = JSON.parse(JSON.stringify(items[k]!.context))
      const rest = await readAll(connection, { table: 'keyed', pageSize: 2 }, after)
      expect(
        values(rest).map((v) => v.n),
        `after position ${k}`,
      ).toEqual(values(items.slice(k + 1)).map((v) => v.n))
    }
  })

  it('reads incrementally by a monotonic column, the primary key breaking ties', async () => {
    db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at INTEGER NOT NULL, body TEXT)')
    const upsert = db.prepare(
      'INSERT INTO events VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body',
    )
    upsert.run(1, 100, 'one')
    upsert.run(2, 100, 'two')
    upsert.run(3, 50, 'three')
    const connection = await connect()
    const stream = { table: 'events', cursor: ['updated_at'], columns: ['id', 'body'] }
    const first = await readAll(connection, stream)
    expect(values(first)).toEqual([
      { id: 3, body: 'three' },
      { id: 1, body: 'one' },
      { id: 2, body: 'two' },
    ])
    expect(first[2]!.context).toEqual({ cursor: [100, 2] })
    upsert.run(3, 200, 'three again')
    upsert.run(4, 150, 'four')
    const next = await readAll(connection, stream, first[2]!.context)
    expect(values(next)).toEqual([
      { id: 4, body: 'four' },
      { id: 3, body: 'three again' },
    ])
  })

  it('reads a view with an explicit cursor, and asks for one without', async () => {
    db.exec(`
      CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER);
      INSERT INTO t VALUES (1, 10), (2, 20), (3, 30);
      CREATE VIEW v AS SELECT id, x * 2 AS doubled FROM t;
    `)
    const connection = await connect()
    expect(values(await readAll(connection, { table: 'v', cursor: ['doubled'] }))).toEqual([
      { id: 1, doubled: 20 },
      { id: 2, doubled: 40 },
      { id: 3, doubled: 60 },
    ])
    const error = await failure(readAll(connection, { table: 'v' }))
    expect(error.kind).toBe('config')
    expect(error.message).toContain('stream.cursor')
  })

  it('stops between pages when aborted', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const insert = db.prepare('INSERT INTO t VALUES (?)')
    db.transaction(() => {
      for (let i = 0; i < 500; i++) insert.run(i)
    })()
    const connection = await connect()
    const controller = new AbortController()
    let count = 0
    const error = await (async () => {
      for await (const _ of connection.read(
        { table: 't', pageSize: 10 },
        { signal: controller.signal },
      )) {
        if (++count === 15) controller.abort()
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((error as Error).name).toBe('AbortError')
    expect(count).toBe(15)
  })

  it('names unknown tables not_found and unknown columns config with the field path', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const connection = await connect()
    expect((await failure(readAll(connection, { table: 'nope' }))).kind).toBe('not_found')
    const column = await failure(readAll(connection, { table: 't', columns: ['id', 'nope'] }))
    expect(column.kind).toBe('config')
    expect(column.message).toContain('/stream/columns/1')
    const context = await failure(readAll(connection, { table: 't' }, { cursor: [1, 2] }))
    expect(context.kind).toBe('config')
    const badContext = await failure(readAll(connection, { table: 't' }, { cursor: [{ x: 1 }] }))
    expect(badContext.kind).toBe('config')
    expect(badContext.message).toContain('/after/cursor/0')
  })
})

describe('writing', () => {
  it('upserts by the primary key, leaves absent fields alone, and replays without change', async () => {
    db.exec(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT DEFAULT 'none', n INTEGER)",
    )
    const connection = await connect()
    const batch = [record({ id: 1, name: 'a', n: 1 }), record({ id: 2, name: 'b', note: 'x' })]
    expect(await connection.write({ table: 't' }, batch, { signal: signal() })).toEqual({
      written: 2,
      failed: [],
    })
    expect(await connection.write({ table: 't' }, batch, { signal: signal() })).toEqual({
      written: 2,
      failed: [],
    })
    await connection.write({ table: 't' }, [record({ id: 1, name: 'a2' })], { signal: signal() })
    expect(db.prepare('SELECT * FROM t ORDER BY id').all()).toEqual([
      { id: 1, name: 'a2', note: 'none', n: 1 },
      { id: 2, name: 'b', note: 'x', n: null },
    ])
  })

  it('upserts by declared unique keys, and refuses keys without a unique constraint as config', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)')
    const connection = await connect()
    await connection.write(
      { table: 't', keys: ['email'] },
      [record({ email: 'a@x', name: 'A' }), record({ email: 'a@x', name: 'A2' })],
      { signal: signal() },
    )
    expect(db.prepare('SELECT email, name FROM t').all()).toEqual([{ email: 'a@x', name: 'A2' }])
    const error = await failure(
      connection.write({ table: 't', keys: ['name'] }, [record({ name: 'x' })], {
        signal: signal(),
      }),
    )
    expect(error.kind).toBe('config')
    const unknown = await failure(
      connection.write({ table: 't' }, [record({ id: 9, nope: 1 })], { signal: signal() }),
    )
    expect(unknown.kind).toBe('config')
    expect(unknown.message).toContain('"nope"')
  })

  it('rolls back only the bad rows (constraints, trigger refusals, missing key) and commits the rest', async () => {
    // RAISE(FAIL) and ON CONFLICT FAIL keep what the failing statement did before it failed
    // (here the trigger's audit row): only the per-row savepoint takes that back.
    db.exec(`
      CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, u TEXT UNIQUE ON CONFLICT FAIL);
      CREATE TABLE audit (id INTEGER);
      CREATE TRIGGER t_audit BEFORE INSERT ON t BEGIN
        INSERT INTO audit VALUES (new.id);
        SELECT RAISE(FAIL, 'n must not be negative') WHERE new.n < 0;
      END;
      INSERT INTO t VALUES (100, 0, 'taken');
    `)
    const connection = await connect()
    const result = await connection.write(
      { table: 't' },
      [
        record({ id: 1, n: 1 }),
        record({ id: 2, n: -1 }),
        record({ id: 3, n: 3, u: 'taken' }),
        record({ n: 4 }),
        record({ id: 5, n: 5 }),
      ],
      { signal: signal() },
    )
    expect(result.written).toBe(2)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [2, 'data'],
      [3, 'data'],
    ])
    expect(result.failed[0]!.error.code).toBe('SQLITE_CONSTRAINT_TRIGGER')
    expect(result.failed[0]!.error.message).toContain('n must not be negative')
    expect(result.failed[1]!.error.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
    expect(result.failed[2]!.error.message).toContain('"id"')
    expect(db.prepare('SELECT id FROM t ORDER BY id').pluck().all()).toEqual([1, 5, 100])
    expect(db.prepare('SELECT id FROM audit ORDER BY id').pluck().all()).toEqual([1, 5, 100])
  })

  it('fails a write to a read-only connection as config, and to a missing table as not_found', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const readOnly = await connect({ readOnly: true })
    await readOnly.check()
    const error = await failure(
      readOnly.write({ table: 't' }, [record({ id: 1 })], { signal: signal() }),
    )
    expect(error.kind).toBe('config')
    expect(error.code).toMatch(/^SQLITE_READONLY/)
    const connection = await connect()
    const missing = await failure(
      connection.write({ table: 'nope' }, [record({ id: 1 })], { signal: signal() }),
    )
    expect(missing.kind).toBe('not_found')
  })

  it('classifies a lock held by another process as transient, and the batch leaves nothing behind', async () => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const connection = await connect({ busyTimeoutMs: 0 })
    db.exec('BEGIN EXCLUSIVE')
    try {
      const error = await failure(
        connection.write({ table: 't' }, [record({ id: 1 })], { signal: signal() }),
      )
      expect(error.kind).toBe('transient')
      expect(error.code).toMatch(/^SQLITE_BUSY/)
    } finally {
      db.exec('ROLLBACK')
    }
    expect(
      await connection.write({ table: 't' }, [record({ id: 1 })], { signal: signal() }),
    ).toEqual({ written: 1, failed: [] })
  })
})

describe('connecting', () => {
  it('refuses :memory: and a missing file as config errors naming /params/path', async () => {
    for (const params of [{ path: ':memory:' }, { path: join(dir, 'missing.db') }]) {
      const error = await failure(sqliteProvider.connect({ credentials: {}, params }))
      expect(error.kind).toBe('config')
      expect(error.issues?.map((i) => i.path)).toContain('/params/path')
    }
    const credentials = await failure(
      sqliteProvider.connect({ credentials: { password: 'x' }, params: { path } }),
    )
    expect(credentials.kind).toBe('config')
    expect(credentials.message).toContain('/credentials')
  })

  it('creates the file only when asked', async () => {
    const fresh = join(dir, 'fresh.db')
    const connection = await sqliteProvider.connect({
      credentials: {},
      params: { path: fresh, create: true },
    })
    await connection.check()
    expect(await connection.discover()).toEqual([])
    await connection.close()
  })

  it('fails check on a file that is not a database as config', async () => {
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, 'this is not a database, just some text that is long enough'.repeat(20))
    const connection = await sqliteProvider.connect({ credentials: {}, params: { path: junk } })
    open.push(connection)
    const error = await failure(connection.check())
    expect(error.kind).toBe('config')
    expect(error.code).toBe('SQLITE_NOTADB')
  })

  it('uses an injected database and never closes it', async () => {
    const injected = new Database(path)
    injected.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)')
    const provider = createSqliteProvider({ database: injected })
    const connection = await provider.connect({
      credentials: {},
      params: { path: '/ignored/when/injected.db' },
    })
    expect(values(await readAll(connection, { table: 't' }))).toEqual([{ id: 7 }])
    await connection.close()
    expect(injected.open).toBe(true)
    injected.close()
  })
})
