// The cross-system exactness matrix (issue 14): a table of precision traps with hostile names,
// seeded into MySQL/MariaDB and PostgreSQL by the servers' own parsing, copied by `nvisy run`
// (the built CLI, as a user runs it) between every pair, and compared by a digest that each
// DATABASE computes in SQL over an agreed canonical text per type (floats as their IEEE-754
// bits, integers and decimals as exact digits, times as microseconds, text and JSON as UTF-8
// hex). A value the destination cannot hold must fail the run loudly, naming the column.
// PostgreSQL -> PostgreSQL appends between the same types pass the COPY text through,
// MySQL -> PostgreSQL rows travel in batches by column, or as COPY text made from MySQL's own
// text when every column's text is one PostgreSQL reads as the same value; all are judged by
// the same digest.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, describeRun, runPipeline, scratchDir } from './support/cli.js'
import {
  firstDifferences,
  MysqlScratch,
  mysqlSkipReason,
  PgScratch,
  postgresSkipReason,
} from './support/databases.js'
import { bulkRows, KEY, TRAP_COLUMNS, TRAP_ROWS, TRAP_TABLE } from './support/traps.js'

const BULK = Number(process.env.NVISY_MATRIX_ROWS ?? 20_000)
const ROWS = TRAP_ROWS.concat(bulkRows(BULK))

const skip =
  (await postgresSkipReason()) ||
  (await mysqlSkipReason()) ||
  (existsSync(CLI) ? false : `${CLI} is missing: run pnpm --filter @nvisy/runtime... build`)

type Side = { kind: 'mysql'; db: MysqlScratch } | { kind: 'postgres'; db: PgScratch }

describe.skipIf(skip)('exactness matrix: relational pairs through nvisy run', () => {
  const my = new MysqlScratch()
  const pgs = new PgScratch()
  let work: Awaited<ReturnType<typeof scratchDir>>

  const mysqlSide: Side = { kind: 'mysql', db: my }
  const pgSide: Side = { kind: 'postgres', db: pgs }

  function source(side: Side, table: string) {
    return {
      id: 'src',
      role: 'source',
      provider: side.kind,
      connection: side.db.connection(),
      stream:
        side.kind === 'mysql'
          ? { table, database: side.db.database, pageSize: 5000 }
          : { table, schema: side.db.schema, pageSize: 5000 },
    }
  }

  function sink(side: Side, table: string, settings: Record<string, unknown>) {
    return {
      id: 'dst',
      role: 'sink',
      provider: side.kind,
      connection: side.db.connection(),
      stream:
        side.kind === 'mysql'
          ? { table, database: side.db.database, ...settings }
          : { table, schema: side.db.schema, ...settings },
      batch: { maxItems: 2000 },
    }
  }

  function pipeline(
    id: string,
    from: Side,
    fromTable: string,
    to: Side,
    toTable: string,
    settings: Record<string, unknown>,
  ) {
    return {
      id,
      nodes: [source(from, fromTable), sink(to, toTable, settings)],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 5000 },
    }
  }

  async function expectIdentical(from: Side, fromTable: string, to: Side, toTable: string) {
    const [a, b] = await Promise.all([from.db.digest(fromTable), to.db.digest(toTable)])
    expect(b.count, 'rows in the destination').toBe(a.count)
    if (a.digest !== b.digest) {
      const differences = firstDifferences(
        await from.db.canonicalRows(fromTable),
        await to.db.canonicalRows(toTable),
      )
      expect.fail(
        `the databases' digests differ (${a.digest} != ${b.digest}); first differences (source != destination):\n${differences.join('\n')}`,
      )
    }
  }

  beforeAll(async () => {
    work = await scratchDir('relational')
    await Promise.all([my.create(), pgs.create()])
    await Promise.all([my.createTrapTable(TRAP_TABLE), pgs.createTrapTable(TRAP_TABLE)])
    await Promise.all([my.insertRows(TRAP_TABLE, ROWS), pgs.insertRows(TRAP_TABLE, ROWS)])
  })

  afterAll(async () => {
    await Promise.all([my.drop(), pgs.drop()])
    await work?.cleanup()
  })

  it('the two sources hold the same values: both databases compute the same canonical digest', async () => {
    // Proves the canonical forms agree across the systems before any copy is judged by them.
    await expectIdentical(mysqlSide, TRAP_TABLE, pgSide, TRAP_TABLE)
    expect((await my.digest(TRAP_TABLE)).count).toBe(ROWS.length)
  })

  it('MySQL -> PostgreSQL into a table the sink creates: identical by digest', async () => {
    const table = 'from mysql "created"'
    expect(await pgs.exists(table)).toBe(false)
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-pg', mysqlSide, TRAP_TABLE, pgSide, table, {
        mode: 'upsert',
        create: 'ifMissing',
      }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.summary?.stats.failedItems).toBe(0)
    expect(await pgs.exists(table)).toBe(true)
    // The rows went in batches by column, not as one record object each.
    expect(run.stderr + run.stdout).toContain('travel in batches by column (nvisy-columns)')
    await expectIdentical(mysqlSide, TRAP_TABLE, pgSide, table)
  })

  it('MySQL -> MySQL into a table the sink creates: identical by digest', async () => {
    const table = 'from mysql `created`'
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-my', mysqlSide, TRAP_TABLE, mysqlSide, table, {
        mode: 'upsert',
        create: 'ifMissing',
      }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(await my.exists(table)).toBe(true)
    await expectIdentical(mysqlSide, TRAP_TABLE, mysqlSide, table)
  })

  it('MySQL -> MySQL into an existing table: identical by digest', async () => {
    const table = 'existing mysql.copy'
    await my.createTrapTable(table)
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-my-existing', mysqlSide, TRAP_TABLE, mysqlSide, table, { mode: 'upsert' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    await expectIdentical(mysqlSide, TRAP_TABLE, mysqlSide, table)
  })

  it('PostgreSQL -> PostgreSQL into a table the sink creates: identical by digest', async () => {
    const table = 'from pg "created"'
    const run = await runPipeline(
      work.dir,
      pipeline('pg-to-pg', pgSide, TRAP_TABLE, pgSide, table, {
        mode: 'upsert',
        create: 'ifMissing',
      }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(await pgs.exists(table)).toBe(true)
    await expectIdentical(pgSide, TRAP_TABLE, pgSide, table)
  })

  it('PostgreSQL -> MySQL into an existing table of the MySQL types: identical by digest', async () => {
    const table = 'from pg.existing'
    await my.createTrapTable(table)
    const run = await runPipeline(
      work.dir,
      pipeline('pg-to-my', pgSide, TRAP_TABLE, mysqlSide, table, { mode: 'upsert' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    await expectIdentical(pgSide, TRAP_TABLE, mysqlSide, table)
  })

  it('MySQL -> PostgreSQL into an existing table of the PostgreSQL types: identical by digest', async () => {
    const table = 'existing pg copy'
    await pgs.createTrapTable(table)
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-pg-existing', mysqlSide, TRAP_TABLE, pgSide, table, { mode: 'upsert' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.stderr + run.stdout).toContain('travel in batches by column (nvisy-columns)')
    await expectIdentical(mysqlSide, TRAP_TABLE, pgSide, table)
  })

  it('PostgreSQL -> PostgreSQL append into an existing table of the same types passes the COPY text through: identical by digest', async () => {
    const table = 'pg "wire" copy'
    await pgs.createTrapTable(table)
    const run = await runPipeline(
      work.dir,
      pipeline('pg-to-pg-wire', pgSide, TRAP_TABLE, pgSide, table, { mode: 'append' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.summary?.stats.nodes.dst?.items).toBe(ROWS.length)
    // The run says the rows went as COPY text, not value by value.
    expect(run.stderr + run.stdout).toContain('pass through as postgresql-copy-text')
    await expectIdentical(pgSide, TRAP_TABLE, pgSide, table)
  })

  // The columns whose MySQL text PostgreSQL reads as the same value: integers, decimals,
  // date-times, JSON and text (floats, bits, binary, TIME, SET and ENUM go value by value).
  const TEXT_COLUMNS = TRAP_COLUMNS.filter((c) =>
    [KEY, 'U 64', 'Ünïcode i64', 'MixedCase Dec', 'Dt', 'Ts', 'J son', 'Txt'].includes(c.name),
  )

  function textPipeline(id: string, toTable: string, settings: Record<string, unknown>) {
    const src = source(mysqlSide, TRAP_TABLE)
    return {
      ...pipeline(id, mysqlSide, TRAP_TABLE, pgSide, toTable, settings),
      nodes: [
        { ...src, stream: { ...src.stream, columns: TEXT_COLUMNS.map((c) => c.name) } },
        sink(pgSide, toTable, settings),
      ],
    }
  }

  async function expectIdenticalColumns(toTable: string) {
    const [a, b] = await Promise.all([
      my.digest(TRAP_TABLE, TEXT_COLUMNS),
      pgs.digest(toTable, TEXT_COLUMNS),
    ])
    expect(b.count, 'rows in the destination').toBe(a.count)
    if (a.digest !== b.digest) {
      const differences = firstDifferences(
        await my.canonicalRows(TRAP_TABLE, TEXT_COLUMNS),
        await pgs.canonicalRows(toTable, TEXT_COLUMNS),
      )
      expect.fail(`the digests differ; first differences:\n${differences.join('\n')}`)
    }
  }

  it("MySQL -> PostgreSQL, columns PostgreSQL reads as MySQL prints them: COPY text made from MySQL's own text, identical by digest (created table, upsert)", async () => {
    const table = 'from mysql as "copy text"'
    const run = await runPipeline(
      work.dir,
      textPipeline('my-to-pg-text', table, { mode: 'upsert', create: 'ifMissing' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.summary?.stats.nodes.dst?.items).toBe(ROWS.length)
    expect(run.stderr + run.stdout).toContain('pass through as postgresql-copy-text')
    await expectIdenticalColumns(table)
  })

  it('MySQL -> PostgreSQL as COPY text into an existing table of the PostgreSQL types (append): identical by digest', async () => {
    const table = 'existing "copy text" append'
    await pgs.createTrapTable(table)
    const run = await runPipeline(
      work.dir,
      textPipeline('my-to-pg-text-append', table, { mode: 'append' }),
    )
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.stderr + run.stdout).toContain('pass through as postgresql-copy-text')
    await expectIdenticalColumns(table)
  })

  it('a destination that would round (numeric(65,29) for DECIMAL(65,30)) is not given the text: the values go one by one and the run fails naming the column', async () => {
    const table = 'rounding "dest"'
    await pgs.createTrapTable(table, { 'MixedCase Dec': 'numeric(65,29)' })
    const run = await runPipeline(
      work.dir,
      textPipeline('my-to-pg-text-round', table, { mode: 'append' }),
    )
    const output = run.stderr + run.stdout
    expect(output, describeRun(run)).not.toContain('pass through as postgresql-copy-text')
    expect(output).toMatch(/MixedCase Dec[^\n]*fewer digits after the point/)
    expect(run.code, describeRun(run)).not.toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('failed')
    expect(`${run.summary?.error?.message ?? ''}\n${run.stderr}`).toMatch(/MixedCase Dec/)
  })

  it('a NUL character in MySQL text, which PostgreSQL text cannot hold, fails the run as COPY text does not hide it', async () => {
    await my.query(
      `CREATE TABLE ${my.table('nul src')} (id BIGINT NOT NULL PRIMARY KEY, t TEXT) CHARACTER SET utf8mb4`,
    )
    await my.query(
      `INSERT INTO ${my.table('nul src')} VALUES (1, 'a'), (2, CONCAT('b', CHAR(0), 'c')), (3, 'd')`,
    )
    const table = 'nul dest'
    const run = await runPipeline(work.dir, {
      ...pipeline('my-to-pg-nul', mysqlSide, 'nul src', pgSide, table, {
        mode: 'append',
        create: 'ifMissing',
      }),
    })
    expect(run.stderr + run.stdout).toContain('pass through as postgresql-copy-text')
    expect(run.code, describeRun(run)).not.toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('failed')
    expect(`${run.summary?.error?.message ?? ''}\n${run.stderr}`).toMatch(/0x00/)
    // Row 2 is not in the destination in any altered form.
    const { rows } = await pgs.pool.query(`SELECT t FROM ${pgs.table(table)} ORDER BY id`)
    expect(rows.map((r) => r.t)).not.toContain('bc')
  })

  it('a value the destination cannot hold fails the run: non-zero exit, the column and rule named', async () => {
    // BIGINT UNSIGNED 18446744073709551615 into a signed bigint, and TIME 838:59:59 into a
    // time of day: no dead-letter sink, no failure budget, so the run must not say completed.
    const table = 'narrow "dest"'
    await pgs.createTrapTable(table, { 'U 64': 'bigint', 't;--': 'time(6)' })
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-pg-narrow', mysqlSide, TRAP_TABLE, pgSide, table, { mode: 'upsert' }),
    )
    expect(run.code, describeRun(run)).not.toBe(0)
    expect(run.code, describeRun(run)).not.toBe(2) // not a usage error: the run itself failed
    expect(run.summary?.status, describeRun(run)).toBe('failed')
    const text = `${run.summary?.error?.message ?? ''}\n${run.stderr}`
    expect(run.summary?.error?.kind ?? text, describeRun(run)).toMatch(/data/)
    // The refused value's column is named, with the rule it broke.
    expect(text, describeRun(run)).toMatch(/U 64|t;--/)
    expect(text, describeRun(run)).toMatch(/out of range|range|does not fit|overflow|time/i)
  })

  it('PostgreSQL NaN and Infinity into a MySQL DOUBLE fail the run, naming the column', async () => {
    const from = 'special floats'
    const to = 'special floats dest'
    await pgs.createTrapTable(from)
    await pgs.insertRows(from, [
      [
        '1',
        'NaN',
        'NaN',
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ],
      [
        '2',
        null,
        'Infinity',
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ],
      [
        '3',
        '1.5',
        '-Infinity',
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ],
    ])
    await my.createTrapTable(to)
    const run = await runPipeline(
      work.dir,
      pipeline('pg-to-my-nan', pgSide, from, mysqlSide, to, { mode: 'upsert' }),
    )
    expect(run.code, describeRun(run)).toBe(1)
    expect(run.summary?.status, describeRun(run)).toBe('failed')
    const text = `${run.summary?.error?.message ?? ''}\n${run.stderr}`
    expect(text, describeRun(run)).toMatch(/Dbl`tick|f\.Float/)
    expect(text, describeRun(run)).toMatch(/NaN|Infinity|finite/i)
    // Nothing partial pretends to be a copy: the refused rows are not in the destination.
    expect(await my.count(to)).toBeLessThan(3)
  })
})
