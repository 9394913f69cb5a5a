// Pass-through reads against a real PostgreSQL: COPY takes no bind parameters, so a filter's
// values and a resume cursor are inlined as literals. Hostile values (quotes, backslashes, a
// statement after a quote) must stay values, hostile column names stay names, and an
// aborted or abandoned COPY must not leave a connection mid-protocol in the pool.
import type { RecordData } from '@nvisy/provider-core'
import { collect, readAll } from '@nvisy/provider-testkit'
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
  Buffer.concat(items.map((i) => Buffer.from((i.data as RecordData).wire!.bytes))).toString('utf8')

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
})
