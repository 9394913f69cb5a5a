// The MySQL sink takes rows in batches by column (`nvisy-columns`): MySQL -> MySQL and
// PostgreSQL -> MySQL copies through `nvisy run` (the built CLI) go by column, land identical by
// the databases' own digests, commit the exactly-once offset with the rows, and a row the
// destination refuses fails alone: it reaches the dead-letter sink as that one row, exact, while
// the other rows of its batch land.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { quoteMysql } from './support/canonical.js'
import { CLI, describeRun, itemFailures, runPipeline, scratchDir } from './support/cli.js'
import {
  firstDifferences,
  MysqlScratch,
  mysqlSkipReason,
  PgScratch,
  postgresSkipReason,
} from './support/databases.js'
import { bulkRows, KEY, TRAP_ROWS, TRAP_TABLE } from './support/traps.js'

const BULK = Number(process.env.NVISY_COLUMNS_SINK_ROWS ?? 10_000)
const ROWS = TRAP_ROWS.concat(bulkRows(BULK))
const LAST_KEY = String(1000 + BULK)
const BY_COLUMN = 'travel in batches by column (nvisy-columns)'

const skip =
  (await postgresSkipReason()) ||
  (await mysqlSkipReason()) ||
  (existsSync(CLI) ? false : `${CLI} is missing: run pnpm --filter @nvisy/runtime... build`)

describe.skipIf(skip)('MySQL sink by column through nvisy run', () => {
  const my = new MysqlScratch()
  const pgs = new PgScratch()
  let work: Awaited<ReturnType<typeof scratchDir>>

  function node(
    id: string,
    role: 'source' | 'sink',
    side: MysqlScratch | PgScratch,
    table: string,
    extra: Record<string, unknown> = {},
  ) {
    const stream =
      side instanceof MysqlScratch
        ? { table, database: side.database }
        : { table, schema: side.schema }
    return {
      id,
      role,
      provider: side instanceof MysqlScratch ? 'mysql' : 'postgres',
      connection: side.connection(),
      stream: { ...stream, ...(role === 'source' ? { pageSize: 5000 } : {}), ...extra },
      ...(role === 'sink' ? { batch: { maxItems: 2000 } } : {}),
    }
  }

  async function expectIdentical(
    from: MysqlScratch | PgScratch,
    fromTable: string,
    toTable: string,
  ) {
    const [a, b] = await Promise.all([from.digest(fromTable), my.digest(toTable)])
    expect(b.count, `rows in ${toTable}`).toBe(a.count)
    if (a.digest !== b.digest)
      expect.fail(
        `the digests of ${fromTable} and ${toTable} differ; first differences:\n${firstDifferences(
          await from.canonicalRows(fromTable),
          await my.canonicalRows(toTable),
        ).join('\n')}`,
      )
  }

  /** The context committed with the rows under the run's offset key, as stored. */
  async function committedOffset(pipelineId: string): Promise<{ values: unknown[] }> {
    const rows = await my.query<{ context: string }[]>(
      `SELECT context FROM ${my.table('_nvisy_offsets')} WHERE \`key\` = ?`,
      [`${pipelineId}/src/dst`],
    )
    expect(rows, 'one committed offset').toHaveLength(1)
    return JSON.parse(rows[0]!.context)
  }

  /**
   * Pipeline `id` copies TRAP_TABLE of `from` into `table`, a new MySQL trap table: it
   * completes by column, writing every row, and the copy is identical by digest.
   */
  async function copyByColumn(id: string, from: MysqlScratch | PgScratch, table: string) {
    await my.createTrapTable(table)
    const run = await runPipeline(work.dir, {
      id,
      nodes: [node('src', 'source', from, TRAP_TABLE), node('dst', 'sink', my, table)],
      edges: [{ from: 'src', to: 'dst' }],
    })
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.stderr + run.stdout, describeRun(run)).toContain(BY_COLUMN)
    expect(run.summary?.stats.nodes.dst?.items, describeRun(run)).toBe(ROWS.length)
    await expectIdentical(from, TRAP_TABLE, table)
  }

  beforeAll(async () => {
    work = await scratchDir('mysql-columns')
    await Promise.all([my.create(), pgs.create()])
    await Promise.all([my.createTrapTable(TRAP_TABLE), pgs.createTrapTable(TRAP_TABLE)])
    await Promise.all([my.insertRows(TRAP_TABLE, ROWS), pgs.insertRows(TRAP_TABLE, ROWS)])
  })

  afterAll(async () => {
    await Promise.all([my.drop(), pgs.drop()])
    await work?.cleanup()
  })

  it('MySQL -> MySQL (upsert into an existing table) goes by column: identical by digest, the offset of the last row committed', async () => {
    const id = 'my-to-my-columns'
    await copyByColumn(id, my, 'by column `copy`')
    expect((await committedOffset(id)).values.map(String)).toEqual([LAST_KEY])
  })

  it('PostgreSQL -> MySQL goes by column: identical by digest', async () => {
    await copyByColumn('pg-to-my-columns', pgs, 'from pg by column')
  })

  it('a row the destination refuses fails alone and reaches the dead-letter sink exact; the rest of its batch lands', async () => {
    // A CHECK on the key refuses about one row in 97 (every batch of 2000 holds some) and the
    // last row, so the last batch too commits its offset on the row-by-row path.
    const refused = `(${quoteMysql(KEY)} % 97 = 5 OR ${quoteMysql(KEY)} = ${LAST_KEY})`
    const table = 'checked dest'
    const dead = 'dead letters'
    await my.createTrapTable(table, {
      [KEY]: `BIGINT NOT NULL PRIMARY KEY CHECK (NOT (${refused}))`,
    })
    await my.createTrapTable(dead)
    // What each side must hold, copied inside MariaDB from the source.
    for (const [name, where] of [
      ['expected kept', `NOT (${refused})`],
      ['expected dead', refused],
    ] as const) {
      await my.createTrapTable(name)
      await my.query(
        `INSERT INTO ${my.table(name)} SELECT * FROM ${my.table(TRAP_TABLE)} WHERE ${where}`,
      )
    }
    const deadCount = await my.count('expected dead')
    expect(deadCount).toBeGreaterThan(50)

    const id = 'my-to-my-refused'
    const run = await runPipeline(work.dir, {
      id,
      nodes: [
        node('src', 'source', my, TRAP_TABLE),
        { ...node('dst', 'sink', my, table), deadLetter: 'dead' },
        node('dead', 'sink', my, dead),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.stderr + run.stdout, describeRun(run)).toContain(BY_COLUMN)
    expect(run.summary?.stats.failedItems, describeRun(run)).toBe(deadCount)
    expect(run.summary?.stats.deadLettered, describeRun(run)).toBe(deadCount)
    expect(run.summary?.stats.nodes.dst?.items, describeRun(run)).toBe(ROWS.length - deadCount)
    const failures = itemFailures(run)
    expect(failures, describeRun(run)).toHaveLength(deadCount)
    for (const failure of failures) {
      expect(failure.nodeId).toBe('dst')
      expect(failure.kind).toBe('data')
      expect(failure.message).toMatch(/^row \d+ of item 0: CONSTRAINT `[^`]+` failed/)
    }
    await expectIdentical(my, 'expected kept', table)
    await expectIdentical(my, 'expected dead', dead)
    // The offset commits with the good rows of a batch that held refused rows.
    expect((await committedOffset(id)).values.map(String)).toEqual([LAST_KEY])
  })
})
