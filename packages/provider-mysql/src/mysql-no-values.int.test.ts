// A refused row's error names the row, the column, the type and the rule, never the value
// (values may be personal or secret data): canary values that each encoder refuses, and
// values the server refuses with a message that quotes them, must appear in no message,
// cause or issue of the write result. Only the failure's `data` (the row, for dead-lettering)
// holds them.
import {
  COLUMNS_WIRE,
  type Data,
  type GuardedConnection,
  type SqlValue,
  tagged,
  type WriteResult,
} from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { mysqlProvider } from './mysql-provider.js'

const skip = await mysqlSkipReason()
const signal = () => new AbortController().signal

const CANARY = 'CANARY-5f3a9c1e'
/** 2^60 + 1: no double holds it. */
const DIGITS = 1152921504606846977n

const COLUMNS = (uuid: boolean) => `
  id INT NOT NULL PRIMARY KEY, email VARCHAR(60) UNIQUE, short VARCHAR(5), i INT, dec12 DECIMAL(12,2),
  f FLOAT, d DOUBLE, b BIT(4), dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
  tm TIME(6), yr YEAR, j JSON, e ENUM('a','b'), s SET('a','b'), vb VARBINARY(10)${uuid ? ', u UUID' : ''}`

/** One row per refusal: its id and the one column it sets. */
const refusals = (uuid: boolean): [string, SqlValue][] => [
  // Refused by the encoder.
  ['dec12', tagged('decimal', CANARY)],
  ['dec12', tagged('decimal', `9${DIGITS}`)],
  ['i', tagged('decimal', `${CANARY}.5`)],
  ['f', tagged('decimal', CANARY)],
  ['d', tagged('decimal', CANARY)],
  ['d', DIGITS],
  ['b', tagged('bits', CANARY)],
  ['dt', tagged('timestamp', CANARY)],
  ['dtm', tagged('timestamp', CANARY)],
  ['dtm', tagged('timestamptz', `2024-01-01T${CANARY}+02:00`)],
  ['ts', tagged('timestamptz', `${CANARY}Z`)],
  ['tm', tagged('interval', CANARY)],
  ['yr', CANARY],
  ['j', tagged('decimal', CANARY)],
  ['e', CANARY],
  ['s', `a,${CANARY}`],
  ['s', ['b', CANARY]],
  ['short', [CANARY]],
  ['vb', tagged('decimal', CANARY)],
  // Let through by the encoder and refused by the server, whose message quotes the value.
  ['dt', CANARY], // Incorrect date value: '...' (1292)
  ['dtm', `${CANARY} 10:00:00`], // Incorrect datetime value: '...' (1292)
  ['short', CANARY], // Data too long (1406): the statement holds the value
  ['email', `seed-${CANARY}@x.io`], // Duplicate entry '...' (1062) in append mode
  ...(uuid ? ([['u', CANARY]] as [string, SqlValue][]) : []), // Incorrect uuid value (1292)
]

/** Every text an error exposes: messages, stacks, issues, its JSON form, and all of its causes. */
function errorTexts(error: unknown, seen = new Set<unknown>()): string[] {
  if (error === null || error === undefined || seen.has(error)) return []
  seen.add(error)
  if (typeof error !== 'object') return [String(error)]
  const e = error as Record<string, unknown> & { toJSON?: () => unknown }
  const texts = [String(e.message), String(e.stack)]
  for (const [key, value] of Object.entries(e)) {
    if (key === 'cause') continue
    texts.push(
      `${key}=${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`,
    )
  }
  if (typeof e.toJSON === 'function') texts.push(JSON.stringify(e.toJSON()))
  return [...texts, ...errorTexts(e.cause, seen)]
}

function leaks(result: WriteResult): string[] {
  const found: string[] = []
  for (const failure of result.failed) {
    for (const text of errorTexts(failure.error)) {
      if (text.includes(CANARY) || text.includes(String(DIGITS)))
        found.push(`failure of item ${failure.index}: ${text.slice(0, 300)}`)
    }
  }
  return found
}

describe.skipIf(skip)('mysql sink: no value in an error', () => {
  let db: TestDatabase
  let connection: GuardedConnection
  let uuid = false

  beforeAll(async () => {
    db = await createTestDatabase()
    connection = await mysqlProvider.connect(db.input())
    const [version] = await db.sql('SELECT VERSION() AS v')
    // MariaDB 10.7+ has a UUID type (written through the generic literal path).
    const match = /^(\d+)\.(\d+).*mariadb/i.exec(String(version.v))
    uuid = match !== null && Number(match[1]) * 100 + Number(match[2]) >= 1007
  })
  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  for (const mode of ['append', 'upsert'] as const) {
    for (const kind of ['records', 'columns'] as const) {
      it(`${mode}, ${kind}: every canary row is refused and no error quotes it`, async () => {
        const table = `canary_${mode}_${kind}`
        await db.sql(`CREATE TABLE ${table} (${COLUMNS(uuid)})`)
        await db.sql(`INSERT INTO ${table} (id, email) VALUES (0, 'seed-${CANARY}@x.io')`)
        const rows = refusals(uuid)
        const names = ['id', ...new Set(rows.map(([column]) => column))]
        // Row r has id r + 1, its canary in its one column and NULL elsewhere; a good row ends the batch.
        const values: SqlValue[][] = rows.map(([column, value], r) =>
          names.map((name) => (name === 'id' ? r + 1 : name === column ? value : null)),
        )
        values.push(names.map((name) => (name === 'id' ? 1000 : null)))
        const batch: Data[] =
          kind === 'records'
            ? values.map((row) => ({
                kind: 'record',
                values: Object.fromEntries(names.map((name, c) => [name, row[c]!])),
              }))
            : [
                {
                  kind: 'record',
                  values: {},
                  wire: {
                    format: COLUMNS_WIRE,
                    columns: names,
                    rows: values.length,
                    values: names.map((_, c) => values.map((row) => row[c]!)),
                  },
                },
              ]
        const result = await connection.write({ table, mode }, batch, {
          signal: signal(),
          ...(kind === 'columns' ? { wire: COLUMNS_WIRE } : {}),
        })
        expect(result.written).toBe(1)
        const labels = result.failed.map((f) => f.error.message.replace(/:.*/s, ''))
        // In upsert mode the duplicate email is a collision on another unique key: refused too.
        expect(labels).toEqual(
          rows.map((_, r) => (kind === 'records' ? `item ${r}` : `row ${r} of item 0`)),
        )
        for (const failure of result.failed) expect(failure.error.kind).toBe('data')
        expect(leaks(result)).toEqual([])
        // The row itself is kept for the dead-letter sink (records are the caller's own items).
        if (kind === 'columns')
          expect(result.failed.map((f) => f.data?.kind === 'record' && f.data.values.id)).toEqual(
            rows.map((_, r) => r + 1),
          )
        expect(await db.sql(`SELECT id FROM ${table} ORDER BY id`)).toEqual([
          { id: 0 },
          { id: 1000 },
        ])
      })
    }
  }
})
