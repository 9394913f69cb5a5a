import { Decimal128, Double, Int32, Long, MongoClient, MongoServerError, ObjectId } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MongoEmulator, startMongoEmulator } from '../index.js'

describe('MongoDB emulator with the official driver', () => {
  let emulator: MongoEmulator
  let client: MongoClient

  beforeAll(async () => {
    emulator = await startMongoEmulator({ port: 0 })
    client = new MongoClient(emulator.url, { serverSelectionTimeoutMS: 2000 })
    await client.connect()
  })
  afterAll(async () => {
    await client?.close()
    await emulator?.close()
  })

  const collection = (name: string) => client.db('emu').collection<any>(name)

  it('answers the handshake, ping and buildInfo', async () => {
    expect(emulator.port).toBeGreaterThan(0)
    expect(await client.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 })
    const hello = await client.db('admin').command({ hello: 1 })
    expect(hello.isWritablePrimary).toBe(true)
    expect(hello.maxWireVersion).toBe(21)
    const info = await client.db('admin').command({ buildInfo: 1 })
    expect(info.version).toBe('7.0.0')
  })

  it('inserts and finds with filter, sort and projection, keeping BSON types', async () => {
    const c = collection('types')
    const oid = new ObjectId()
    await c.insertMany([
      {
        _id: 1,
        i: new Int32(7),
        d: new Double(1),
        l: Long.fromString('9007199254740993'),
        m: Decimal128.fromString('1.10'),
        o: oid,
        tags: ['a'],
      },
      { _id: 2, i: new Int32(3), d: new Double(2.5), nested: { x: 1 } },
    ])
    const [first] = await c
      .find({ _id: 1 }, { promoteValues: false, promoteLongs: false })
      .toArray()
    expect(first.i).toBeInstanceOf(Int32)
    expect(first.d).toBeInstanceOf(Double)
    expect(first.l.toString()).toBe('9007199254740993')
    expect(first.m.toString()).toBe('1.10')
    expect(first.o.equals(oid)).toBe(true)
    const sorted = await c
      .find({ i: { $gte: 3 } })
      .sort({ i: 1 })
      .project({ i: 1 })
      .toArray()
    expect(sorted).toEqual([
      { _id: 2, i: 3 },
      { _id: 1, i: 7 },
    ])
    expect(await c.find({ 'nested.x': 1 }).toArray()).toHaveLength(1)
    expect(await c.find({ o: oid }).toArray()).toHaveLength(1)
    expect(await c.find({ o: { $type: 'objectId' } }).toArray()).toHaveLength(1)
    expect(await c.find({ tags: 'a' }).toArray()).toHaveLength(1)
  })

  it('pages a find through getMore cursors with batchSize and limit', async () => {
    const c = collection('paging')
    await c.insertMany(Array.from({ length: 250 }, (_, i) => ({ _id: i, n: i })))
    const all = await c.find({}).sort({ _id: -1 }).batchSize(20).toArray()
    expect(all.map((d) => d._id)).toEqual(Array.from({ length: 250 }, (_, i) => 249 - i))
    const limited = await c
      .find({ _id: { $gt: 100 } })
      .sort({ _id: 1 })
      .limit(55)
      .batchSize(10)
      .toArray()
    expect(limited.map((d) => d._id)).toEqual(Array.from({ length: 55 }, (_, i) => 101 + i))
    const cursor = c.find({}).batchSize(5)
    expect(await cursor.next()).toMatchObject({ _id: 0 })
    await cursor.close() // killCursors
    expect(await c.find({}).skip(245).toArray()).toHaveLength(5)
  })

  it('sorts mixed _id types in BSON order and brackets comparisons by type', async () => {
    const c = collection('mixed')
    const oid = new ObjectId('0123456789abcdef01234567')
    await c.insertMany([
      { _id: 'b' },
      { _id: oid },
      { _id: 10 },
      { _id: new Date(0) },
      { _id: 'a' },
      { _id: true },
      { _id: Long.fromNumber(2) },
      { _id: { k: 1 } },
    ])
    const ids = (await c.find({}).sort({ _id: 1 }).toArray()).map((d) => d._id)
    expect(ids).toEqual([2, 10, 'a', 'b', { k: 1 }, oid, true, new Date(0)])
    expect((await c.find({ _id: { $gt: 'a' } }).toArray()).map((d) => d._id)).toEqual(['b'])
    expect((await c.find({ _id: { $gt: 5 } }).toArray()).map((d) => d._id)).toEqual([10])
    // The string form of an ObjectId is another _id.
    expect(await c.find({ _id: oid.toHexString() }).toArray()).toEqual([])
    await c.insertOne({ _id: oid.toHexString() })
    expect(await c.countDocuments({})).toBe(9)
    // Long 2 and Int32 2 are the same _id.
    await expect(c.insertOne({ _id: 2 })).rejects.toMatchObject({ code: 11000 })
  })

  it('updates with replacement, $set/$unset/$inc, upsert and multi', async () => {
    const c = collection('updates')
    await c.insertMany([
      { _id: 'a', n: 1, group: 'x' },
      { _id: 'b', n: 2, group: 'x' },
      { _id: 'c', n: 3, group: 'y' },
    ])
    const many = await c.updateMany({ group: 'x' }, { $inc: { n: 10 }, $set: { seen: true } })
    expect(many).toMatchObject({ matchedCount: 2, modifiedCount: 2 })
    await c.updateOne({ _id: 'c' }, { $unset: { group: '' } })
    expect(await c.findOne({ _id: 'c' })).toEqual({ _id: 'c', n: 3 })
    const replaced = await c.replaceOne({ _id: 'a' }, { fresh: 1 })
    expect(replaced.modifiedCount).toBe(1)
    expect(await c.findOne({ _id: 'a' })).toEqual({ _id: 'a', fresh: 1 })
    const upserted = await c.updateOne(
      { _id: 'z' },
      { $set: { n: 9 }, $setOnInsert: { created: 1 } },
      { upsert: true },
    )
    expect(upserted.upsertedId).toBe('z')
    expect(await c.findOne({ _id: 'z' })).toEqual({ _id: 'z', n: 9, created: 1 })
    const byField = await c.updateOne({ key: 'k1' }, { $set: { v: 1 } }, { upsert: true })
    expect(byField.upsertedId).toBeInstanceOf(ObjectId)
    expect(await c.findOne({ key: 'k1' })).toMatchObject({ key: 'k1', v: 1 })
    const bulk = await c.bulkWrite(
      [
        { replaceOne: { filter: { _id: 'b' }, replacement: { _id: 'b', r: 1 }, upsert: true } },
        { replaceOne: { filter: { _id: 'new' }, replacement: { _id: 'new', r: 2 }, upsert: true } },
      ],
      { ordered: false },
    )
    expect(bulk.matchedCount).toBe(1)
    expect(bulk.upsertedCount).toBe(1)
    expect(bulk.upsertedIds).toEqual({ 1: 'new' })
    await expect(c.replaceOne({ _id: 'b' }, { _id: 'other' })).rejects.toMatchObject({ code: 66 })
    await expect(c.updateOne({ _id: 'b' }, { $bogus: { a: 1 } } as never)).rejects.toBeInstanceOf(
      MongoServerError,
    )
  })

  it('deletes one or many and counts', async () => {
    const c = collection('deletes')
    await c.insertMany(Array.from({ length: 10 }, (_, i) => ({ _id: i, even: i % 2 === 0 })))
    expect(await c.countDocuments({ even: true })).toBe(5)
    expect(await c.estimatedDocumentCount()).toBe(10)
    expect((await c.deleteOne({ even: true })).deletedCount).toBe(1)
    expect((await c.deleteMany({ even: true })).deletedCount).toBe(4)
    expect((await c.deleteMany({ _id: { $in: [1, 3] } })).deletedCount).toBe(2)
    expect(await c.countDocuments()).toBe(3)
    expect(await c.countDocuments({}, { limit: 2 })).toBe(2)
  })

  it('enforces unique indexes with code 11000 per document, continuing when unordered', async () => {
    const c = collection('unique')
    expect(await c.createIndex({ email: 1 }, { unique: true })).toBe('email_1')
    await c.insertOne({ _id: 1, email: 'a@x' })
    const error = await c.insertOne({ _id: 2, email: 'a@x' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MongoServerError)
    expect(error).toMatchObject({
      code: 11000,
      keyValue: { email: 'a@x' },
      keyPattern: { email: 1 },
    })
    const bulk = await c
      .insertMany(
        [
          { _id: 3, email: 'b@x' },
          { _id: 4, email: 'a@x' },
          { _id: 1, email: 'c@x' },
          { _id: 5, email: 'd@x' },
        ],
        { ordered: false },
      )
      .catch((e: any) => e)
    expect(bulk.writeErrors.map((w: any) => [w.index, w.code])).toEqual([
      [1, 11000],
      [2, 11000],
    ])
    expect((await c.find({}).sort({ _id: 1 }).toArray()).map((d) => d._id)).toEqual([1, 3, 5])
    const ordered = await c
      .insertMany([
        { _id: 6, email: 'e@x' },
        { _id: 7, email: 'e@x' },
        { _id: 8, email: 'f@x' },
      ])
      .catch((e: any) => e)
    expect(ordered.writeErrors.map((w: any) => w.index)).toEqual([1])
    expect(await c.countDocuments({ _id: 8 })).toBe(0)
    // An update that would duplicate a unique key fails as well.
    await expect(c.updateOne({ _id: 3 }, { $set: { email: 'a@x' } })).rejects.toMatchObject({
      code: 11000,
    })
    // A unique index over existing duplicates cannot be built.
    await c.insertMany([
      { k: 1, email: 'k1@x' },
      { k: 1, email: 'k2@x' },
    ])
    await expect(c.createIndex({ k: 1 }, { unique: true })).rejects.toMatchObject({ code: 11000 })
    const indexes = await c.listIndexes().toArray()
    expect(indexes.map((i) => i.name)).toEqual(['_id_', 'email_1'])
  })

  it('refuses documents that fail the collection validator with code 121', async () => {
    const db = client.db('emu')
    await db.createCollection('validated', { validator: { n: { $type: 'number' } } })
    const result = await db
      .collection('validated')
      .insertMany([{ n: 1 }, { n: 'x' }, { n: 2 }], { ordered: false })
      .catch((e: any) => e)
    expect(result.writeErrors.map((w: any) => [w.index, w.code])).toEqual([[1, 121]])
    expect(await db.collection('validated').countDocuments()).toBe(2)
  })

  it('aggregates with mingo, as countDocuments does', async () => {
    const c = collection('agg')
    await c.insertMany([
      { k: 'a', v: new Int32(1) },
      { k: 'a', v: new Int32(2) },
      { k: 'b', v: new Int32(5) },
    ])
    const grouped = await c
      .aggregate([{ $group: { _id: '$k', total: { $sum: '$v' } } }, { $sort: { _id: 1 } }])
      .toArray()
    expect(grouped).toEqual([
      { _id: 'a', total: 3 },
      { _id: 'b', total: 5 },
    ])
    expect(await c.distinct('k')).toEqual(['a', 'b'])
  })

  it('lists and drops collections and databases', async () => {
    const db = client.db('emu_catalog')
    await db.collection('one').insertOne({ a: 1 })
    await db.createCollection('two')
    await expect(db.createCollection('two')).rejects.toMatchObject({ code: 48 })
    const names = (await db.listCollections().toArray()).map((c) => c.name).sort()
    expect(names).toEqual(['one', 'two'])
    expect((await db.listCollections({ name: 'one' }).toArray()).map((c) => c.name)).toEqual([
      'one',
    ])
    const dbs = await client.db('admin').admin().listDatabases()
    expect(dbs.databases.map((d) => d.name)).toContain('emu_catalog')
    expect(await db.collection('one').drop()).toBe(true)
    expect((await db.listCollections().toArray()).map((c) => c.name)).toEqual(['two'])
    await db.dropDatabase()
    expect((await db.listCollections().toArray()).length).toBe(0)
  })

  it('refuses change streams and unknown commands with proper server errors', async () => {
    const stream = collection('agg').watch()
    const error = await stream.tryNext().catch((e: unknown) => e)
    await stream.close()
    expect(error).toBeInstanceOf(MongoServerError)
    expect((error as MongoServerError).code).toBe(40573)
    const unknown = await client
      .db('admin')
      .command({ frobnicate: 1 })
      .catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(MongoServerError)
    expect(unknown).toMatchObject({ code: 59, codeName: 'CommandNotFound' })
  })
})

describe('MongoDB emulator authentication (SCRAM-SHA-256)', () => {
  let emulator: MongoEmulator

  beforeAll(async () => {
    emulator = await startMongoEmulator({ users: { alice: 's3cret-pw' } })
  })
  afterAll(async () => {
    await emulator?.close()
  })

  const connectAs = async (user: string, password: string) => {
    const client = new MongoClient(emulator.url, {
      auth: { username: user, password },
      serverSelectionTimeoutMS: 2000,
    })
    try {
      await client.connect()
      return await client.db('app').collection('c').countDocuments()
    } finally {
      await client.close()
    }
  }

  it('accepts the right password', async () => {
    await expect(connectAs('alice', 's3cret-pw')).resolves.toBe(0)
  })

  it('refuses a wrong password and an unknown user with code 18', async () => {
    for (const [user, password] of [
      ['alice', 'wrong'],
      ['mallory', 's3cret-pw'],
    ] as const) {
      const error = await connectAs(user, password).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MongoServerError)
      expect((error as MongoServerError).code).toBe(18)
      expect((error as MongoServerError).codeName).toBe('AuthenticationFailed')
    }
  })

  it('refuses commands before authentication with code 13', async () => {
    const client = new MongoClient(emulator.url, { serverSelectionTimeoutMS: 2000 })
    try {
      const error = await client
        .db('app')
        .collection('c')
        .findOne({})
        .catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 13, codeName: 'Unauthorized' })
    } finally {
      await client.close()
    }
  })
})
