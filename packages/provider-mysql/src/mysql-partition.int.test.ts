import { ProviderError } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { mysqlProvider } from './mysql-provider.js'
import type { MysqlContext, MysqlStream } from './mysql-schemas.js'

const skip = await mysqlSkipReason()
type Connection = Awaited<ReturnType<typeof mysqlProvider.connect>>
let db: TestDatabase
let connection: Connection

/** A JSON round trip, as a stored plan or checkpoint is. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

async function read(
  stream: MysqlStream,
  options: { after?: unknown; limit?: number } = {},
): Promise<{ key: string; context: MysqlContext }[]> {
  const out: { key: string; context: MysqlContext }[] = []
  const signal = new AbortController().signal
  for await (const item of connection.read(viaJson(stream), {
    after: options.after as never,
    signal,
  })) {
    out.push({ key: JSON.stringify(item.context.values), context: item.context })
    if (options.limit !== undefined && out.length >= options.limit) break
  }
  return out
}

/** Every partition's keys; fails on a key read by two partitions. */
async function readPartitions(partitions: MysqlStream[]): Promise<string[][]> {
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

async function plan(stream: MysqlStream, count: number) {
  return viaJson(await connection.partition(stream, { count }))
}

/** INSERT ... SELECT over n = 0 .. 10^digits - 1 (works on MySQL and MariaDB alike). */
function numbers(digits: number): string {
  const tables = Array.from({ length: digits }, (_, i) => `d d${i}`).join(', ')
  const sum = Array.from({ length: digits }, (_, i) => `d${i}.n * ${10 ** i}`).join(' + ')
  return `SELECT ${sum} AS n FROM ${tables}`
}

describe.skipIf(skip)('mysql partitions against MariaDB/MySQL', () => {
  beforeAll(async () => {
    db = await createTestDatabase()
    await db.sql('CREATE TABLE d (n INT PRIMARY KEY)')
    await db.sql('INSERT INTO d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)')
    connection = await mysqlProvider.connect(db.input())
  }, 60_000)

  afterAll(async () => {
    await connection?.close()
    await db?.drop()
  })

  it('splits a composite key whose leading column is skewed into even, disjoint ranges', async () => {
    await db.sql(
      'CREATE TABLE tenant_rows (tenant INT NOT NULL, seq INT NOT NULL, body VARCHAR(20), PRIMARY KEY (tenant, seq))',
    )
    await db.sql(
      `INSERT INTO tenant_rows SELECT 1, n + 1, 'r' FROM (${numbers(4)}) x WHERE n < 9000`,
    )
    await db.sql(
      `INSERT INTO tenant_rows SELECT 2 + n DIV 100, n % 100 + 1, 'r' FROM (${numbers(3)}) x WHERE n < 900`,
    )
    const stream: MysqlStream = { table: 'tenant_rows', pageSize: 500 }
    const { partitions, reason } = await plan(stream, 4)
    expect(reason).toBeUndefined()
    expect(partitions).toHaveLength(4)
    expect(partitions[0]!.range?.after).toBeUndefined()
    expect(partitions[3]!.range?.through).toBeUndefined()
    const parts = await readPartitions(partitions)
    expect(parts.map((p) => p.length)).toEqual([2475, 2475, 2475, 2475])
    expect(parts.flat()).toEqual((await read(stream)).map((r) => r.key))
  })

  it('splits a key with a huge gap by rows, from a sample of a large table', async () => {
    await db.sql('CREATE TABLE gapped (id BIGINT PRIMARY KEY, pad VARCHAR(40) NOT NULL)')
    await db.sql(
      `INSERT INTO gapped SELECT n + 1, REPEAT('x', 40) FROM (${numbers(5)}) x WHERE n < 20000`,
    )
    for (let block = 0; block < 2; block++)
      await db.sql(
        `INSERT INTO gapped SELECT 1000000000000 + ${block * 100_000} + n, REPEAT('y', 40) FROM (${numbers(5)}) x WHERE n < 90000`,
      )
    await db.sql('ANALYZE TABLE gapped')
    const stream: MysqlStream = { table: 'gapped', columns: ['id'], pageSize: 20_000 }
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const parts = await readPartitions(partitions)
    expect(parts.flat().length).toBe(200_000)
    // Planned from a sample: the exact quartiles (50 000 rows each) would mean every key was read.
    expect(parts.map((p) => p.length)).not.toEqual([50_000, 50_000, 50_000, 50_000])
    for (const part of parts) {
      expect(part.length).toBeGreaterThan(200_000 / 4 - 12_000)
      expect(part.length).toBeLessThan(200_000 / 4 + 12_000)
    }
    expect(parts.flat()).toEqual((await read(stream)).map((r) => r.key))
  }, 180_000)

  it('rows inserted while the partitions are read are read once, by the partition whose range holds them', async () => {
    await db.sql('CREATE TABLE growing (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL)')
    await db.sql(`INSERT INTO growing SELECT (n + 1) * 10, 'v' FROM (${numbers(3)}) x`)
    const stream: MysqlStream = { table: 'growing', pageSize: 50 }
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const bounds = partitions.map((p) => ({
      after: p.range?.after ? Number(p.range.after[0]) : -Infinity,
      through: p.range?.through ? Number(p.range.through[0]) : Infinity,
    }))
    const firstPass: { key: string; context: MysqlContext }[][] = []
    for (const partition of partitions) firstPass.push(await read(partition, { limit: 100 }))
    const positions = firstPass.map((rows) => Number(rows[rows.length - 1]!.context.values[0]))
    await db.sql(
      `INSERT INTO growing SELECT n * 10 + 5, 'new' FROM (${numbers(4)}) x WHERE n <= 1200`,
    )
    const seen = new Map<number, number>()
    for (const [p, partition] of partitions.entries()) {
      let rows = firstPass[p]!
      let after: MysqlContext = rows[rows.length - 1]!.context
      for (let pass = 0; pass < 3; pass++) {
        for (const row of rows) {
          const id = Number(row.context.values[0])
          expect(seen.get(id), `${id} read by partitions ${seen.get(id)} and ${p}`).toBeUndefined()
          seen.set(id, p)
        }
        rows = await read(partition, { after: viaJson(after) })
        if (rows.length > 0) after = rows[rows.length - 1]!.context
      }
    }
    const expected = new Map<number, number>()
    for (const { id, v } of await db.sql('SELECT id, v FROM growing ORDER BY id')) {
      const owner = bounds.findIndex((b) => id > b.after && id <= b.through)
      expect(bounds.filter((b) => id > b.after && id <= b.through)).toHaveLength(1)
      // Rows inserted behind a partition's position are read by no keyset read, partitioned or not.
      if (v === 'new' && id < positions[owner]!) continue
      expected.set(Number(id), owner)
    }
    expect([...seen.entries()].sort((a, b) => a[0] - b[0])).toEqual(
      [...expected.entries()].sort((a, b) => a[0] - b[0]),
    )
    expect(seen.size).toBe(1000 + 1201 - 400)
    expect(seen.get(12005)).toBe(3)
  })

  it('an empty table is one partition with a reason; fewer rows than partitions give one row each', async () => {
    await db.sql('CREATE TABLE empty_rows (id INT PRIMARY KEY)')
    const empty = await plan({ table: 'empty_rows' }, 4)
    expect(empty.partitions).toHaveLength(1)
    expect(empty.partitions[0]!.range).toBeUndefined()
    expect(empty.reason).toMatch(/no rows/)
    expect(await readPartitions(empty.partitions)).toEqual([[]])

    await db.sql('CREATE TABLE three (id INT PRIMARY KEY)')
    await db.sql('INSERT INTO three VALUES (7), (8), (9)')
    const three = await plan({ table: 'three' }, 8)
    expect(three.partitions).toHaveLength(3)
    expect(three.reason).toMatch(/3 rows: 3 partitions/)
    expect(await readPartitions(three.partitions)).toEqual([['[7]'], ['[8]'], ['[9]']])
  })

  it('case-insensitive text keys split in the collation order; declared cursors keep the key tiebreak', async () => {
    await db.sql(`CREATE TABLE words (
      word VARCHAR(64) COLLATE utf8mb4_general_ci PRIMARY KEY,
      at DATETIME(6) NOT NULL, n INT NOT NULL)`)
    await db.sql(`INSERT INTO words
      SELECT CONCAT(CASE n % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'B' ELSE 'é' END, MD5(n)),
             TIMESTAMP('2024-01-01 00:00:00.000001') + INTERVAL (n % 7) MICROSECOND, n
      FROM (${numbers(4)}) x WHERE n < 3000`)
    const byWord: MysqlStream = { table: 'words', filter: [{ column: 'n', op: '>=', value: 100 }] }
    const parts = await readPartitions((await plan(byWord, 5)).partitions)
    expect(parts).toHaveLength(5)
    expect(parts.flat()).toEqual((await read(byWord)).map((r) => r.key))
    expect(parts.flat()).toHaveLength(2900)

    const byTime: MysqlStream = { table: 'words', cursor: ['at'] }
    const timeParts = await readPartitions((await plan(byTime, 4)).partitions)
    expect(timeParts.map((p) => p.length)).toEqual([750, 750, 750, 750])
    expect(timeParts.flat()).toEqual((await read(byTime)).map((r) => r.key))
  })

  it('refuses a nullable declared cursor column naming it, and range bounds that do not fit', async () => {
    await db.sql('CREATE TABLE maybe (id INT PRIMARY KEY, ts DATETIME NULL, n INT NOT NULL)')
    const nullable = await connection
      .partition({ table: 'maybe', cursor: ['n', 'ts'] }, { count: 4 })
      .catch((e: unknown) => e as ProviderError)
    expect(ProviderError.isInstance(nullable)).toBe(true)
    expect((nullable as ProviderError).kind).toBe('config')
    expect((nullable as ProviderError).message).toMatch(/cursor column "ts" .* is nullable/)
    expect((nullable as ProviderError).issues?.[0]?.path).toBe('/stream/cursor/1')

    const short = await read({ table: 'tenant_rows', range: { through: [1] } }).catch(
      (e: unknown) => e as ProviderError,
    )
    expect((short as ProviderError).kind).toBe('config')
    expect((short as ProviderError).issues?.[0]?.path).toBe('/stream/range/through')
    const wrongType = await read({ table: 'three', range: { after: ['seven'] } }).catch(
      (e: unknown) => e as ProviderError,
    )
    expect((wrongType as ProviderError).kind).toBe('config')
    expect((wrongType as ProviderError).message).toContain(
      '/stream/range/after: value 0 does not fit column "id"',
    )
  })
})
