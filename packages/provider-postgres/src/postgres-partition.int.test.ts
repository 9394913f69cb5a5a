import { ProviderError, type RecordData } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminPool, skipReason, testInput, uniqueSchema } from './__fixtures__/postgres.js'
import { postgresProvider } from './index.js'
import type { PostgresStream } from './postgres-schemas.js'

const skip = await skipReason()
const schema = uniqueSchema('nvisy_part')
const admin = adminPool()
const q = (name: string) => `"${name.replace(/"/g, '""')}"`
type Connection = Awaited<ReturnType<typeof postgresProvider.connect>>

let connection: Connection

/** A JSON round trip, as a stored plan or checkpoint is. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

async function read(
  stream: PostgresStream,
  options: { after?: unknown; limit?: number } = {},
): Promise<{ key: string; context: unknown }[]> {
  const out: { key: string; context: unknown }[] = []
  const signal = new AbortController().signal
  for await (const item of connection.read(viaJson(stream), {
    after: options.after as never,
    signal,
  })) {
    const values = (item.data as RecordData).values
    out.push({ key: JSON.stringify(item.context), context: item.context })
    if (values === undefined) throw new Error('no values')
    if (options.limit !== undefined && out.length >= options.limit) break
  }
  return out
}

/** Every partition's keys; fails on a key read by two partitions. */
async function readPartitions(partitions: PostgresStream[]): Promise<string[][]> {
  const parts = await Promise.all(partitions.map(async (p) => (await read(p)).map((r) => r.key)))
  const owner = new Map<string, number>()
  parts.forEach((keys, p) => {
    for (const key of keys) {
      expect(owner.get(key), `${key} read by partitions ${owner.get(key)} and ${p}`).toBeUndefined()
      owner.set(key, p)
    }
  })
  return parts
}

async function plan(stream: PostgresStream, count: number) {
  return viaJson(await connection.partition(stream, { count }))
}

describe.skipIf(skip)('postgres partitions against PostgreSQL', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA ${q(schema)}`)
    connection = await postgresProvider.connect(testInput(schema))
  }, 60_000)

  afterAll(async () => {
    await connection?.close()
    await admin.query(`DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`)
    await admin.end()
  })

  it('splits a composite key whose leading column is skewed into even, disjoint ranges', async () => {
    // Tenant 1 holds 9000 of 9900 rows: a split by tenant value could not balance this.
    await admin.query(
      `CREATE TABLE ${q(schema)}.tenant_rows (tenant int NOT NULL, seq int NOT NULL, body text, PRIMARY KEY (tenant, seq))`,
    )
    await admin.query(`INSERT INTO ${q(schema)}.tenant_rows
      SELECT 1, g, 'r' || g FROM generate_series(1, 9000) g
      UNION ALL SELECT t, g, 'r' || g FROM generate_series(2, 10) t, generate_series(1, 100) g`)
    const stream: PostgresStream = { table: 'tenant_rows' }
    const { partitions, reason } = await plan(stream, 4)
    expect(reason).toBeUndefined()
    expect(partitions).toHaveLength(4)
    expect(partitions[0]!.range?.after).toBeUndefined()
    expect(partitions[3]!.range?.through).toBeUndefined()
    const parts = await readPartitions(partitions)
    expect(parts.map((p) => p.length)).toEqual([2475, 2475, 2475, 2475])
    const whole = (await read(stream)).map((r) => r.key)
    expect(parts.flat()).toEqual(whole)
  })

  it('splits a key with a huge gap by rows, not by value, from a TABLESAMPLE of a large table', async () => {
    // 20 000 small ids and 180 000 ids past 10^12: a split of [min, max] by value would put
    // nearly every row in the last range. ~14 MB: planned from a sample, not every key.
    await admin.query(`CREATE TABLE ${q(schema)}.gapped (id bigint PRIMARY KEY, pad text NOT NULL)`)
    await admin.query(`INSERT INTO ${q(schema)}.gapped
      SELECT g, repeat('x', 40) FROM generate_series(1, 20000) g
      UNION ALL SELECT 1000000000000 + g, repeat('y', 40) FROM generate_series(1, 180000) g`)
    await admin.query(`ANALYZE ${q(schema)}.gapped`)
    const stream: PostgresStream = { table: 'gapped', columns: ['id'], pageSize: 10_000 }
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const parts = await readPartitions(partitions)
    expect(parts.flat().length).toBe(200_000)
    // Planned from a sample: the exact quartiles (50 000 rows each) would mean every key was read.
    expect(parts.map((p) => p.length)).not.toEqual([50_000, 50_000, 50_000, 50_000])
    for (const part of parts) {
      // By rows: each part near a quarter. TABLESAMPLE SYSTEM samples whole pages (about 280
      // of ~1900 here), so a boundary moves by about 3% of the rows (one standard deviation,
      // ~6000 rows); +-12 000 failed in a CI run (62 783 rows). A split by value would give
      // 20 000, 0, 0 and 180 000 rows.
      expect(part.length).toBeGreaterThan(200_000 / 4 - 20_000)
      expect(part.length).toBeLessThan(200_000 / 4 + 20_000)
    }
    const whole = (await read(stream)).map((r) => r.key)
    expect(parts.flat()).toEqual(whole)
  }, 120_000)

  it('plans a partitioned table from its leaves, sampled', async () => {
    await admin.query(
      `CREATE TABLE ${q(schema)}.parted (id int PRIMARY KEY, pad text NOT NULL) PARTITION BY RANGE (id)`,
    )
    await admin.query(
      `CREATE TABLE ${q(schema)}.parted_low PARTITION OF ${q(schema)}.parted FOR VALUES FROM (0) TO (10000)`,
    )
    await admin.query(
      `CREATE TABLE ${q(schema)}.parted_high PARTITION OF ${q(schema)}.parted FOR VALUES FROM (10000) TO (1000000)`,
    )
    await admin.query(
      `INSERT INTO ${q(schema)}.parted SELECT g, repeat('p', 60) FROM generate_series(1, 120000) g`,
    )
    await admin.query(`ANALYZE ${q(schema)}.parted`)
    const stream: PostgresStream = { table: 'parted', columns: ['id'], pageSize: 10_000 }
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const parts = await readPartitions(partitions)
    expect(parts.map((p) => p.length)).not.toEqual([30_000, 30_000, 30_000, 30_000])
    for (const part of parts) expect(Math.abs(part.length - 30_000)).toBeLessThan(9_000)
    expect(parts.flat()).toEqual((await read(stream)).map((r) => r.key))
  }, 60_000)

  it('plans from the table size when it was never analyzed', async () => {
    await admin.query(
      `CREATE TABLE ${q(schema)}.fresh (id int PRIMARY KEY, pad text NOT NULL) WITH (autovacuum_enabled = off)`,
    )
    await admin.query(
      `INSERT INTO ${q(schema)}.fresh SELECT g, repeat('z', 200) FROM generate_series(1, 60000) g`,
    )
    const { partitions } = await plan({ table: 'fresh', columns: ['id'] }, 3)
    expect(partitions).toHaveLength(3)
    const parts = await readPartitions(partitions)
    expect(parts.flat().length).toBe(60_000)
    for (const part of parts) expect(part.length).toBeGreaterThan(60_000 / 3 - 6_000)
  }, 60_000)

  it('rows inserted while the partitions are read are read once, by the partition whose range holds them', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.growing (id int PRIMARY KEY, v text NOT NULL)`)
    await admin.query(
      `INSERT INTO ${q(schema)}.growing SELECT g * 10, 'v' FROM generate_series(1, 1000) g`,
    )
    const stream: PostgresStream = { table: 'growing', pageSize: 50 }
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const bounds = partitions.map((p) => ({
      after: p.range?.after ? Number(p.range.after[0]) : -Infinity,
      through: p.range?.through ? Number(p.range.through[0]) : Infinity,
    }))
    // Read every partition part way, insert rows inside every range and past the end, then
    // finish each read and resume each partition from its last context (the next run).
    const firstPass: { key: string; context: unknown }[][] = []
    for (const partition of partitions) firstPass.push(await read(partition, { limit: 100 }))
    const positions = firstPass.map(
      (rows) => (rows[rows.length - 1]!.context as { cursor: number[] }).cursor[0]!,
    )
    await admin.query(
      `INSERT INTO ${q(schema)}.growing SELECT g * 10 + 5, 'new' FROM generate_series(0, 1200) g`,
    )
    const seen = new Map<number, number>()
    for (const [p, partition] of partitions.entries()) {
      let rows = firstPass[p]!
      let after = rows[rows.length - 1]!.context
      for (let pass = 0; pass < 3; pass++) {
        for (const row of rows) {
          const id = (row.context as { cursor: number[] }).cursor[0]!
          expect(seen.get(id), `${id} read by partitions ${seen.get(id)} and ${p}`).toBeUndefined()
          seen.set(id, p)
        }
        rows = await read(partition, { after: viaJson(after) })
        if (rows.length > 0) after = rows[rows.length - 1]!.context
      }
    }
    // What a keyset read promises, partition by partition: every row of its range is read,
    // except rows inserted behind its position (no read sees those, partitioned or not).
    const all = await admin.query<{ id: number; v: string }>(
      `SELECT id, v FROM ${q(schema)}.growing ORDER BY id`,
    )
    const expected = new Map<number, number>()
    for (const { id, v } of all.rows) {
      const owner = bounds.findIndex((b) => id > b.after && id <= b.through)
      expect(owner, `${id} lies in no partition`).toBeGreaterThanOrEqual(0)
      expect(bounds.filter((b) => id > b.after && id <= b.through)).toHaveLength(1)
      if (v === 'new' && id < positions[owner]!) continue
      expected.set(id, owner)
    }
    expect([...seen.entries()].sort((a, b) => a[0] - b[0])).toEqual(
      [...expected.entries()].sort((a, b) => a[0] - b[0]),
    )
    // 1000 old rows, 1201 new ones of which 100 per partition landed behind its position.
    expect(seen.size).toBe(1000 + 1201 - 400)
    // Rows past the last planned key went to the last (open-ended) partition.
    expect(seen.get(12005)).toBe(3)
  })

  it('an empty table is one partition with a reason; fewer rows than partitions give one row each', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.empty (id int PRIMARY KEY)`)
    const empty = await plan({ table: 'empty' }, 4)
    expect(empty.partitions).toEqual([{ table: 'empty', pageSize: 2000 }])
    expect(empty.reason).toMatch(/no rows/)
    expect(await readPartitions(empty.partitions)).toEqual([[]])

    await admin.query(`CREATE TABLE ${q(schema)}.three (id int PRIMARY KEY)`)
    await admin.query(`INSERT INTO ${q(schema)}.three VALUES (7), (8), (9)`)
    const three = await plan({ table: 'three' }, 8)
    expect(three.partitions).toHaveLength(3)
    expect(three.reason).toMatch(/3 rows: 3 partitions/)
    expect(await readPartitions(three.partitions)).toEqual([
      [JSON.stringify({ cursor: [7] })],
      [JSON.stringify({ cursor: [8] })],
      [JSON.stringify({ cursor: [9] })],
    ])
  })

  it('text keys split in the database collation order, declared cursors keep the primary key tiebreak, filters hold', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.words (
      word text COLLATE "C" PRIMARY KEY, at timestamptz NOT NULL, n int NOT NULL)`)
    await admin.query(`INSERT INTO ${q(schema)}.words
      SELECT md5(g::text) || CASE WHEN g % 3 = 0 THEN 'Ä' WHEN g % 3 = 1 THEN 'a' ELSE 'Z' END,
             timestamptz '2024-01-01 00:00:00.000001Z' + (g % 7) * interval '1 microsecond', g
      FROM generate_series(1, 3000) g`)
    const byWord: PostgresStream = {
      table: 'words',
      filter: [{ column: 'n', op: '>', value: 100 }],
    }
    const parts = await readPartitions((await plan(byWord, 5)).partitions)
    expect(parts).toHaveLength(5)
    expect(parts.flat()).toEqual((await read(byWord)).map((r) => r.key))
    expect(parts.flat()).toHaveLength(2900)

    // Seven distinct timestamps: the primary key breaks the ties, so ranges still split evenly.
    const byTime: PostgresStream = { table: 'words', cursor: ['at'] }
    const timeParts = await readPartitions((await plan(byTime, 4)).partitions)
    expect(timeParts.map((p) => p.length)).toEqual([750, 750, 750, 750])
    expect(timeParts.flat()).toEqual((await read(byTime)).map((r) => r.key))
  })

  it('a partition splits again into ranges that together read exactly it', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.twice (id int PRIMARY KEY)`)
    await admin.query(`INSERT INTO ${q(schema)}.twice SELECT g FROM generate_series(1, 400) g`)
    const { partitions } = await plan({ table: 'twice' }, 2)
    for (const partition of partitions) {
      const sub = await plan(partition, 3)
      expect(sub.partitions).toHaveLength(3)
      expect(sub.partitions[0]!.range?.after).toEqual(partition.range?.after)
      expect(sub.partitions[2]!.range?.through).toEqual(partition.range?.through)
      const parts = await readPartitions(sub.partitions)
      expect(parts.flat()).toEqual((await read(partition)).map((r) => r.key))
    }
  })

  it('refuses a nullable declared cursor column, and a view, naming the column', async () => {
    await admin.query(
      `CREATE TABLE ${q(schema)}.maybe (id int PRIMARY KEY, ts timestamptz, n int NOT NULL)`,
    )
    await admin.query(`CREATE VIEW ${q(schema)}.maybe_view AS SELECT id, n FROM ${q(schema)}.maybe`)
    const nullable = await connection
      .partition({ table: 'maybe', cursor: ['n', 'ts'] }, { count: 4 })
      .catch((e: unknown) => e as ProviderError)
    expect(ProviderError.isInstance(nullable)).toBe(true)
    expect((nullable as ProviderError).kind).toBe('config')
    expect((nullable as ProviderError).message).toMatch(/cursor column "ts" .* is nullable/)
    expect((nullable as ProviderError).issues?.[0]?.path).toBe('/stream/cursor/1')
    const view = await connection
      .partition({ table: 'maybe_view', cursor: ['id'] }, { count: 4 })
      .catch((e: unknown) => e as ProviderError)
    expect((view as ProviderError).kind).toBe('config')
    expect((view as ProviderError).message).toMatch(/a view declares no column NOT NULL/)
    // A nullable column is fine to read, only not to split by.
    expect(await read({ table: 'maybe', cursor: ['n'] })).toEqual([])
  })

  it('refuses a range whose bounds do not fit the cursor, naming the field', async () => {
    await admin.query(`CREATE TABLE ${q(schema)}.pair (a int, b int, PRIMARY KEY (a, b))`)
    const error = await read({ table: 'pair', range: { through: [1] } }).catch(
      (e: unknown) => e as ProviderError,
    )
    expect((error as ProviderError).kind).toBe('config')
    expect((error as ProviderError).message).toContain('range.through has 1 cursor values')
    expect((error as ProviderError).issues?.[0]?.path).toBe('/stream/range/through')
  })
})
