// Exactly-once APPEND after a crash (issue 14): SIGKILL the runtime in the middle of a
// PostgreSQL -> PostgreSQL, a MySQL -> MySQL and a MySQL -> PostgreSQL copy (the last as COPY
// text made from MySQL's own text, resumed from the middle of its batches) in append mode,
// with and without a primary key on the destination, start it again, and prove the
// destination holds each source row exactly once (count, no repeated key, the servers' md5s
// equal) and that the resumed run reported no failure. Append is not idempotent by itself: only a sink that
// commits the source offset in the same transaction as the batch (and a runtime that resumes
// from it) survives the replayed window. Without a key a replay duplicates rows; with a key it
// fails them as duplicates: both are what this test refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mysqlSkipReason, TestDatabase } from './support/mysql.js'
import { postgresConnection, postgresSkipReason, TestSchema } from './support/postgres.js'
import {
  kill9,
  runToEnd,
  scratch,
  startRun,
  waitFor,
  writePipeline,
} from './support/runtime-process.js'

const ROWS = 60_000

interface Target {
  label: string
  provider: 'postgres' | 'mysql'
  connection(): object
  source(table: string): object
  sink(table: string): object
  create(): Promise<void>
  drop(): Promise<void>
  createTable(table: string, options: { primaryKey?: boolean }): Promise<void>
  seed(table: string, from: number, to: number): Promise<void>
  count(table: string): Promise<number>
  duplicates(table: string): Promise<number>
  md5(table: string): Promise<string>
  /** Another system's sink (source and sink are `provider` and `connection` otherwise). */
  sinkSide?: {
    provider: 'postgres'
    connection(): object
    createTable(table: string, options: { primaryKey?: boolean }): Promise<void>
    count(table: string): Promise<number>
    duplicates(table: string): Promise<number>
    /** The same digest as the source's `md5`, computed by the sink's server. */
    md5(table: string): Promise<string>
    /** What the first run must say about how the rows travel. */
    travel: string
  }
}

function postgresTarget(): Target {
  const db = new TestSchema()
  return {
    label: 'PostgreSQL -> PostgreSQL',
    provider: 'postgres',
    connection: () => postgresConnection(db.name),
    source: (table) => ({ table, pageSize: 2000 }),
    sink: (table) => ({ table, mode: 'append' }),
    create: () => db.create(),
    drop: () => db.drop(),
    createTable: (table, options) => db.createTable(table, options),
    seed: (table, from, to) => db.seed(table, from, to),
    count: (table) => db.count(table),
    duplicates: (table) => db.duplicates(table),
    md5: (table) => db.md5(table),
  }
}

function mysqlTarget(): Target {
  const db = new TestDatabase()
  return {
    label: 'MySQL -> MySQL',
    provider: 'mysql',
    connection: () => db.connection(),
    source: (table) => ({ table, pageSize: 2000 }),
    sink: (table) => ({ table, mode: 'append' }),
    create: () => db.create(),
    drop: () => db.drop(),
    createTable: (table, options) => db.createTable(table, options),
    seed: (table, from, to) => db.seed(table, from, to),
    count: (table) => db.count(table),
    duplicates: (table) => db.duplicates(table),
    md5: (table) => db.md5(table),
  }
}

/**
 * MySQL -> PostgreSQL: the source's columns are ones whose MySQL text PostgreSQL reads as the
 * same value, so the rows go as COPY text made from MySQL's own bytes. Both servers compute
 * the same digest: md5 of each row's text (text and JSON as UTF-8 hex, decimals as digits,
 * times to the microsecond), concatenated in key order.
 */
function mysqlToPostgresTarget(): Target {
  const source = mysqlTarget()
  const db = new TestSchema()
  return {
    ...source,
    label: 'MySQL -> PostgreSQL (COPY text)',
    create: async () => {
      await source.create()
      await db.create()
    },
    drop: async () => {
      await source.drop()
      await db.drop()
    },
    sinkSide: {
      provider: 'postgres',
      connection: () => postgresConnection(db.name),
      createTable: async (table, options) => {
        await db.pool.query(`CREATE TABLE ${db.name}.${table} (
          id bigint NOT NULL${options.primaryKey === false ? '' : ' PRIMARY KEY'},
          name varchar(200) NOT NULL,
          amount numeric(18, 6),
          at timestamp(6),
          doc json
        )`)
      },
      count: (table) => db.count(table),
      duplicates: (table) => db.duplicates(table),
      md5: async (table) => {
        const { rows } = await db.pool.query(
          `SELECT md5(string_agg(md5(concat_ws('|', id, upper(encode(convert_to(name, 'UTF8'), 'hex')),
                  amount, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'),
                  upper(encode(convert_to(doc::text, 'UTF8'), 'hex')))), '' ORDER BY id)) AS h
           FROM ${db.name}.${table}`,
        )
        return rows[0].h as string
      },
      travel: 'pass through as postgresql-copy-text',
    },
  }
}

async function killAndResume(target: Target, primaryKey: boolean) {
  const sink = target.sinkSide ?? target
  const work = await scratch(`append-${target.provider}-${sink.provider}`)
  const dst = primaryKey ? 'dst_key' : 'dst_nokey'
  try {
    await sink.createTable(dst, { primaryKey })
    const id = `append-${target.provider}-${sink.provider}-${primaryKey ? 'key' : 'nokey'}`
    const file = await writePipeline(work.dir, id, {
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: target.provider,
          connection: target.connection(),
          stream: target.source('src'),
        },
        {
          id: 'dst',
          role: 'sink',
          provider: sink.provider,
          connection: sink.connection(),
          stream: target.sink(dst),
          batch: { maxItems: 1000 },
          // Offsets are committed in source order: the runtime uses them with one batch in flight.
          concurrency: 1,
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      // Checkpoints are rare on purpose: the window written after the last one is large, so
      // only the offsets committed with the batches can make the resume exact.
      options: { checkpointEveryItems: 20_000, checkpointEverySeconds: 30 },
    } as never)
    const checkpoints = `${work.dir}/checkpoints.json`

    const first = startRun(file, checkpoints, { runId: `${id}-1` })
    await waitFor(
      '30% of the rows in the destination',
      async () => {
        if (first.child.exitCode !== null)
          throw new Error(
            `the first run ended (exit ${first.child.exitCode}) before the kill: ${first.stdout()}\n${first.stderr().slice(-3000)}`,
          )
        return (await sink.count(dst)) >= ROWS * 0.3
      },
      60_000,
      50,
    )
    const killed = await kill9(first)
    expect(killed.signal).toBe('SIGKILL')
    const atKill = await sink.count(dst)
    expect(atKill, 'the kill must land mid-run').toBeLessThan(ROWS)
    if (target.sinkSide) expect(first.stderr() + first.stdout()).toContain(target.sinkSide.travel)

    const second = await runToEnd(file, checkpoints, { runId: `${id}-2` })
    const account = `summary ${JSON.stringify(second.summary)}\nstderr tail ${second.stderr.slice(-3000)}`
    // Zero reported failures: no refused row, no item_failed event, the run completed.
    expect(second.summary.error, account).toBeUndefined()
    expect(second.code, account).toBe(0)
    expect(second.summary.status, account).toBe('completed')
    expect(second.summary.stats.failedItems, account).toBe(0)
    expect(second.summary.stats.nodes.dst?.failed ?? 0, account).toBe(0)
    expect(second.stderr, account).not.toMatch(/item_failed|item failed/)

    // Zero duplicates: every source row exactly once, equal by the server's own md5.
    if (target.sinkSide) expect(second.stderr).toContain(target.sinkSide.travel)
    expect(await sink.duplicates(dst), 'rows repeated by the replayed window').toBe(0)
    expect(await sink.count(dst)).toBe(ROWS)
    expect(await sink.md5(dst)).toBe(await target.md5('src'))
  } finally {
    await work.cleanup()
  }
}

for (const [makeTarget, skipReason] of [
  [postgresTarget, await postgresSkipReason()],
  [mysqlTarget, await mysqlSkipReason()],
  [mysqlToPostgresTarget, (await mysqlSkipReason()) || (await postgresSkipReason())],
] as const) {
  const target = makeTarget()
  describe.skipIf(skipReason)(`SIGKILL during an APPEND ${target.label} run`, () => {
    beforeAll(async () => {
      await target.create()
      await target.createTable('src', { primaryKey: true })
      await target.seed('src', 1, ROWS)
    })

    afterAll(async () => {
      await target.drop()
    })

    it('destination with a primary key: resumes with no duplicate-key failure and no lost row', async () => {
      await killAndResume(target, true)
    })

    it('destination without a key: resumes with no duplicated row', async () => {
      await killAndResume(target, false)
    })
  })
}
