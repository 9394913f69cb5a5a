import { type GuardedConnection, ProviderError, type ReadItem } from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { Binary, BSON, Decimal128, Double, Int32, Long, ObjectId, Timestamp, UUID } from 'mongodb'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type MongoTarget,
  mongoSkipReason,
  openMongoTarget,
  realUrl,
} from './__fixtures__/mongodb-env.js'
import { type MongoContext, type MongoStream, mongoProvider } from './index.js'

const skip = await mongoSkipReason()
const RAW = { promoteValues: false, promoteLongs: false, bsonRegExp: true } as const

function collect(
  connection: GuardedConnection,
  stream: MongoStream,
  after?: MongoContext,
): Promise<ReadItem<MongoContext>[]> {
  return readAll<MongoContext>(connection, stream, { after })
}

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

describe.skipIf(skip)(
  `mongodb documents (${realUrl ? 'NVISY_TEST_MONGODB_URL' : 'emulator'})`,
  () => {
    let target: MongoTarget
    let connection: GuardedConnection
    const db = () => target.client.db(target.database)

    beforeAll(async () => {
      target = await openMongoTarget()
      connection = await mongoProvider.connect(target.input())
    })
    afterAll(async () => {
      await connection?.close()
      await target?.close()
    })
    beforeEach(async () => {
      for (const name of await db().listCollections({}, { nameOnly: true }).toArray()) {
        await db().collection<any>(name.name).drop()
      }
    })

    it('maps every BSON type to canonical Extended JSON and back without loss', async () => {
      const original = {
        _id: new ObjectId(),
        int: new Int32(42),
        double: new Double(1),
        fraction: new Double(-0.125),
        long: Long.fromString('9223372036854775807'),
        decimal: Decimal128.fromString('12345678901234567890.1234567890'),
        date: new Date('2024-02-29T13:45:00.123Z'),
        binary: new Binary(Buffer.from([0, 1, 2, 250, 255])),
        uuid: new UUID('0f8fad5b-d9cb-469f-a165-70867728950e').toBinary(),
        timestamp: new Timestamp({ t: 1700000000, i: 7 }),
        regex: new BSON.BSONRegExp('^a.c$', 'im'),
        nil: null,
        yes: true,
        text: 'héllo \u{1F600}',
        nested: {
          list: [new Int32(1), [new Double(2.5), { deep: Long.fromNumber(3) }], 'x'],
          empty: {},
        },
      }
      await db().collection<any>('types').insertOne(original)
      const items = await collect(connection, { collection: 'types' })
      expect(items).toHaveLength(1)
      const data = items[0]!.data
      if (data.kind !== 'document') throw new Error('not a document')
      expect(data.id).toBe(original._id.toHexString())
      expect(data.content).toMatchObject({
        _id: { $oid: original._id.toHexString() },
        int: { $numberInt: '42' },
        double: { $numberDouble: '1.0' },
        long: { $numberLong: '9223372036854775807' },
        decimal: { $numberDecimal: '12345678901234567890.1234567890' },
        date: { $date: { $numberLong: String(original.date.getTime()) } },
        binary: { $binary: { base64: 'AAEC+v8=', subType: '00' } },
        uuid: { $binary: { subType: '04' } },
        timestamp: { $timestamp: { t: 1700000000, i: 7 } },
        regex: { $regularExpression: { pattern: '^a.c$', options: 'im' } },
      })
      // The context survives JSON and resumes after the ObjectId.
      expect(items[0]!.context).toEqual({ _id: { $oid: original._id.toHexString() } })
      expect(
        await collect(connection, { collection: 'types' }, viaJson(items[0]!.context)),
      ).toEqual([])

      // Written back through the provider (as JSON, as it crosses the runtime) into another collection.
      const result = await connection.write({ collection: 'copy' }, [viaJson(data)], {
        signal: new AbortController().signal,
      })
      expect(result).toEqual({ written: 1, failed: [] })
      const [stored] = await db().collection<any>('copy').find({}, RAW).toArray()
      const [source] = await db().collection<any>('types').find({}, RAW).toArray()
      expect(BSON.EJSON.stringify(stored, { relaxed: false })).toBe(
        BSON.EJSON.stringify(source, { relaxed: false }),
      )
      expect(stored!.int).toBeInstanceOf(Int32)
      expect(stored!.double).toBeInstanceOf(Double)
      expect(stored!.long.toString()).toBe('9223372036854775807')
    })

    it('reads _ids of mixed types in BSON order and resumes after each without gap or duplicate', async () => {
      const oid = new ObjectId('65f000000000000000000001')
      const ids = [
        'b',
        oid,
        new Int32(10),
        new Date(0),
        'a',
        true,
        Long.fromNumber(2),
        new Double(2.5),
        { k: 1 },
        oid.toHexString(),
      ]
      await db()
        .collection<any>('mixed')
        .insertMany(ids.map((_id, n) => ({ _id, n })))
      const all = await collect(connection, { collection: 'mixed', batchSize: 3 })
      expect(all.map((item) => (item.data.kind === 'document' ? item.data.id : ''))).toEqual([
        '{"$numberLong":"2"}',
        '{"$numberDouble":"2.5"}',
        '{"$numberInt":"10"}',
        '65f000000000000000000001', // the string
        'a',
        'b',
        '{"k":{"$numberInt":"1"}}',
        '65f000000000000000000001', // the ObjectId
        'true',
        '{"$date":{"$numberLong":"0"}}',
      ])
      for (let k = 0; k < all.length; k++) {
        const rest = await collect(
          connection,
          { collection: 'mixed', batchSize: 3 },
          viaJson(all[k]!.context),
        )
        expect(rest.map((item) => item.context)).toEqual(
          all.slice(k + 1).map((item) => item.context),
        )
      }
    })

    it('applies a filter in Extended JSON and a projection, keeping _id', async () => {
      const ids = Array.from(
        { length: 6 },
        (_, i) => new ObjectId(i.toString(16).padStart(24, 'a')),
      )
      await db()
        .collection<any>('filtered')
        .insertMany(
          ids.map((_id, i) => ({ _id, n: i, kind: i % 2 === 0 ? 'even' : 'odd', secret: 'hide' })),
        )
      const stream: MongoStream = {
        collection: 'filtered',
        filter: { kind: 'even', _id: { $gt: { $oid: ids[0]!.toHexString() } } },
        projection: { n: 1 },
        batchSize: 1,
      }
      const items = await collect(connection, stream)
      expect(
        items.map((item) => (item.data.kind === 'document' ? item.data.content : null)),
      ).toEqual([
        { _id: { $oid: ids[2]!.toHexString() }, n: { $numberInt: '2' } },
        { _id: { $oid: ids[4]!.toHexString() }, n: { $numberInt: '4' } },
      ])
      const resumed = await collect(connection, stream, viaJson(items[0]!.context))
      expect(resumed).toHaveLength(1)
      const excluded = await collect(connection, {
        collection: 'filtered',
        projection: { secret: 0 },
      })
      expect(excluded[0]!.data.kind === 'document' && excluded[0]!.data.content).not.toHaveProperty(
        'secret',
      )
      const error = await collect(connection, {
        collection: 'filtered',
        projection: { _id: 0 },
      }).catch((e: unknown) => e)
      expect(ProviderError.isInstance(error) && error.kind).toBe('config')
    })

    it('reads incrementally by a monotonic field then _id, including ties and later arrivals', async () => {
      const at = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute))
      await db()
        .collection<any>('events')
        .insertMany([
          { _id: 'e3', updatedAt: at(1) },
          { _id: 'e1', updatedAt: at(2) },
          { _id: 'e2', updatedAt: at(1) },
          { _id: 'e0' }, // no value: sorts first, as null
          { _id: 'e4', updatedAt: at(3) },
        ])
      const stream: MongoStream = { collection: 'events', cursorField: 'updatedAt', batchSize: 2 }
      const all = await collect(connection, stream)
      expect(all.map((item) => item.data.kind === 'document' && item.data.id)).toEqual([
        'e0',
        'e2',
        'e3',
        'e1',
        'e4',
      ])
      expect(all[1]!.context).toEqual({
        _id: 'e2',
        cursor: { $date: { $numberLong: String(at(1).getTime()) } },
      })
      for (let k = 0; k < all.length; k++) {
        const rest = await collect(connection, stream, viaJson(all[k]!.context))
        expect(rest.map((item) => item.data.kind === 'document' && item.data.id)).toEqual(
          all.slice(k + 1).map((item) => item.data.kind === 'document' && item.data.id),
        )
      }
      const last = viaJson(all[all.length - 1]!.context)
      await db()
        .collection<any>('events')
        .insertMany([
          { _id: 'e5', updatedAt: at(3) }, // same time as the last one, larger _id
          { _id: 'a-late', updatedAt: at(4) },
          { _id: 'old', updatedAt: at(0) }, // behind the cursor: not new for an incremental read
        ])
      const fresh = await collect(connection, stream, last)
      expect(fresh.map((item) => item.data.kind === 'document' && item.data.id)).toEqual([
        'e5',
        'a-late',
      ])
      // A context from a stream without cursorField does not fit this one.
      const error = await collect(connection, stream, { _id: 'e1' }).catch((e: unknown) => e)
      expect(ProviderError.isInstance(error) && error.kind).toBe('config')
    })

    it('reports refused documents alone: validation (121), bad Extended JSON, a duplicate key', async () => {
      await db().createCollection('checked', { validator: { n: { $type: 'number' } } })
      await db().collection<any>('checked').createIndex({ email: 1 }, { unique: true })
      const result = await connection.write(
        { collection: 'checked' },
        [
          { kind: 'document', id: 'a', content: { n: 1, email: 'a@x' } },
          { kind: 'document', id: 'b', content: { n: 'not a number', email: 'b@x' } },
          { kind: 'document', id: 'c', content: { n: 3, count: { $numberLong: 'seven' } } },
          { kind: 'document', id: 'd', content: { n: 4, email: 'a@x' } },
          { kind: 'document', id: 'e', content: { n: 5, email: 'e@x' } },
        ],
        { signal: new AbortController().signal },
      )
      expect(result.written).toBe(2)
      expect(result.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
        [1, 'data', '121'],
        [2, 'data', undefined],
        [3, 'data', '11000'],
      ])
      const ids = (await db().collection<any>('checked').find({}).sort({ _id: 1 }).toArray()).map(
        (d) => d._id,
      )
      expect(ids).toEqual(['a', 'e'])
    })

    it('derives _id from data.id (ObjectId hex, Extended JSON, or a plain string) and deletes by id', async () => {
      const oid = new ObjectId()
      const signal = new AbortController().signal
      await connection.write(
        { collection: 'ids' },
        [
          { kind: 'document', id: oid.toHexString(), content: { v: 1 } },
          { kind: 'document', id: '{"$numberLong":"7"}', content: { v: 2 } },
          { kind: 'document', id: 'plain', content: { v: 3 } },
          { kind: 'document', id: 'ignored', content: { _id: { $numberInt: '9' }, v: 4 } },
        ],
        { signal },
      )
      const docs = await db().collection<any>('ids').find({}, RAW).sort({ _id: 1 }).toArray()
      expect(docs.map((d) => BSON.EJSON.stringify(d._id, { relaxed: false }))).toEqual([
        '{"$numberLong":"7"}',
        '{"$numberInt":"9"}',
        '"plain"',
        `{"$oid":"${oid.toHexString()}"}`,
      ])
      await connection.write(
        { collection: 'ids', idMode: 'string' },
        [{ kind: 'document', id: oid.toHexString(), content: { v: 5 } }],
        { signal },
      )
      expect(
        await db()
          .collection<any>('ids')
          .countDocuments({ _id: oid.toHexString() as never }),
      ).toBe(1)
      const deleted = await connection.delete(
        { collection: 'ids' },
        [oid.toHexString(), 'plain', 'absent'],
        { signal },
      )
      expect(deleted).toEqual({ written: 3, failed: [] })
      expect(await db().collection<any>('ids').countDocuments()).toBe(3)
    })

    it('discovers the collections of the database', async () => {
      await db().collection<any>('one').insertOne({ a: 1 })
      await db().collection<any>('two').insertOne({ a: 1 })
      const streams = await connection.discover()
      expect(streams.map((s) => [s.name, s.data, s.stream])).toEqual([
        ['one', 'document', { collection: 'one' }],
        ['two', 'document', { collection: 'two' }],
      ])
    })
  },
)
