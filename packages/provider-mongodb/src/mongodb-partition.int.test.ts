import type { DocumentData } from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { Decimal128, Long, ObjectId } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MongoTarget, mongoSkipReason, openMongoTarget } from './__fixtures__/mongodb-env.js'
import { mongoProvider } from './mongodb-provider.js'
import type { MongoStream } from './mongodb-schemas.js'
import { partitionCollection } from './mongodb-source.js'

const skip = await mongoSkipReason()
type Connection = Awaited<ReturnType<typeof mongoProvider.connect>>
let target: MongoTarget
let connection: Connection

/** A JSON round trip, as a stored plan or checkpoint is. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

async function ids(stream: MongoStream, after?: unknown): Promise<string[]> {
  const items = await readAll(connection, viaJson(stream), { after })
  return items.map((item) => (item.data as DocumentData).id)
}

async function readPartitions(partitions: MongoStream[]): Promise<string[][]> {
  const parts: string[][] = []
  for (const partition of partitions) parts.push(await ids(partition))
  const owner = new Map<string, number>()
  parts.forEach((part, p) => {
    for (const id of part) {
      expect(owner.get(id), `${id} read by partitions ${owner.get(id)} and ${p}`).toBeUndefined()
      owner.set(id, p)
    }
  })
  return parts
}

describe.skipIf(skip)('mongodb partitions', () => {
  beforeAll(async () => {
    target = await openMongoTarget()
    connection = await mongoProvider.connect(target.input())
  }, 60_000)
  afterAll(async () => {
    await connection?.close()
    await target?.close()
  })

  it('split _ids of every type bracket (null, numbers, strings, ObjectIds, dates) exactly', async () => {
    const c = target.client.db(target.database).collection('mixed')
    const docs: { _id: unknown; n: number }[] = [{ _id: null, n: -1 }]
    for (let i = 0; i < 40; i++) {
      docs.push({ _id: i % 2 ? i : new Long(i * 1000), n: i })
      docs.push({ _id: `s${String(i).padStart(3, '0')}`, n: 100 + i })
      docs.push({ _id: new ObjectId(i.toString(16).padStart(24, '0')), n: 200 + i })
      docs.push({ _id: new Date(Date.UTC(2024, 0, 1 + i)), n: 300 + i })
    }
    docs.push({ _id: new Decimal128('12.5'), n: 999 })
    await c.insertMany(docs as never[])
    const stream: MongoStream = { collection: 'mixed', batchSize: 7 }
    const whole = await ids(stream)
    expect(whole).toHaveLength(162)
    for (const count of [2, 5, 8]) {
      const { partitions } = viaJson(await connection.partition(stream, { count }))
      expect(partitions).toHaveLength(count)
      const parts = await readPartitions(partitions)
      expect(parts.flat()).toEqual(whole)
      for (const part of parts) expect(Math.abs(part.length - 162 / count)).toBeLessThanOrEqual(1)
    }
    // A partition resumes within itself from any of its items' contexts.
    const { partitions } = viaJson(await connection.partition(stream, { count: 4 }))
    for (const partition of partitions) {
      const items = (await readAll(connection, partition)).map((item) => item.context)
      const all = await ids(partition)
      expect(await ids(partition, viaJson(items[10]))).toEqual(all.slice(11))
    }
  })

  it('keeps the filter, plans from a $sample past the exact limit, and refuses nothing it cannot order', async () => {
    const c = target.client.db(target.database).collection('many')
    await c.insertMany(
      Array.from({ length: 1200 }, (_, i) => ({
        _id: new ObjectId(i.toString(16).padStart(24, '0')),
        even: i % 2 === 0,
      })),
    )
    const stream: MongoStream = { collection: 'many', filter: { even: true } }
    const db = target.client.db(target.database)
    const sampled = viaJson(
      await partitionCollection(db, stream, 4, new AbortController().signal, {
        exact: 100,
        sample: 200,
      }),
    )
    expect(sampled.partitions).toHaveLength(4)
    const parts = await readPartitions(sampled.partitions)
    expect(parts.flat()).toEqual(await ids(stream))
    expect(parts.flat()).toHaveLength(600)
    for (const part of parts) expect(Math.abs(part.length - 150)).toBeLessThan(60)

    const ordered = await connection.partition(
      { collection: 'many', cursorField: 'even' },
      { count: 4 },
    )
    expect(ordered.partitions).toHaveLength(1)
    expect(ordered.reason).toMatch(/cursorField/)
    const empty = await connection.partition({ collection: 'nothing' }, { count: 4 })
    expect(empty.partitions).toEqual([{ collection: 'nothing', batchSize: 1000 }])
    expect(empty.reason).toMatch(/no documents/)
  })
})
