// The sink's prepare: the collection is created when missing (or refused as not_found with
// create 'never'), and a unique index on the source's primary key is created when the
// document id is not that key, so a replay or a second source row with the same key cannot
// add a second document. Checked with the driver's own listCollections / listIndexes.
import type { GuardedConnection, StreamSchema } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MongoTarget, mongoSkipReason, openMongoTarget } from './__fixtures__/mongodb-env.js'
import { mongoProvider } from './mongodb-provider.js'

const skip = await mongoSkipReason()

const ordersSchema: StreamSchema = {
  system: 'mysql',
  columns: [
    {
      name: 'tenant',
      nativeType: 'varchar(20)',
      type: { type: 'text', maxLength: 20 },
      nullable: false,
    },
    {
      name: 'order_no',
      nativeType: 'bigint',
      type: { type: 'integer', bits: 64 },
      nullable: false,
    },
    {
      name: 'total',
      nativeType: 'decimal(10,2)',
      type: { type: 'decimal', precision: 10, scale: 2 },
      nullable: true,
    },
  ],
  primaryKey: ['tenant', 'order_no'],
}

describe.skipIf(skip)('mongodb sink prepare', () => {
  let target: MongoTarget
  let connection: GuardedConnection
  const signal = new AbortController().signal

  const collections = async () =>
    (await target.client.db(target.database).listCollections({}, { nameOnly: true }).toArray())
      .map((c) => c.name)
      .sort()
  const indexes = (name: string) =>
    target.client.db(target.database).collection(name).listIndexes().toArray()

  beforeAll(async () => {
    target = await openMongoTarget()
    connection = (await mongoProvider.connect(target.input(), { signal })) as GuardedConnection
  })

  afterAll(async () => {
    await connection?.close()
    await target?.close()
  })

  it('declares prepare', () => {
    expect(mongoProvider.capabilities.prepare).toBe(true)
  })

  it("creates a missing collection with create 'ifMissing' (the default), and reports it", async () => {
    const result = await connection.prepare({ collection: 'created' }, { signal })
    expect(result.existed).toBe(false)
    expect(result.actions).toHaveLength(1)
    expect(result.actions[0]).toMatch(/createCollection.*created/)
    expect(await collections()).toContain('created')
    // A second prepare finds it and does nothing.
    expect(
      await connection.prepare({ collection: 'created', create: 'ifMissing' }, { signal }),
    ).toEqual({
      existed: true,
      actions: [],
    })
  })

  it('dry run: says what it would do and changes nothing', async () => {
    const result = await connection.prepare(
      { collection: 'dry' },
      { signal, dryRun: true, schema: ordersSchema },
    )
    expect(result.existed).toBe(false)
    expect(result.actions).toHaveLength(2)
    expect(result.actions[0]).toMatch(/createCollection.*dry/)
    expect(result.actions[1]).toMatch(/createIndex.*tenant.*order_no.*unique/)
    expect(await collections()).not.toContain('dry')
  })

  it("a missing collection with create 'never' is not_found, naming it", async () => {
    await expect(
      connection.prepare({ collection: 'absent', create: 'never' }, { signal }),
    ).rejects.toMatchObject({ kind: 'not_found', message: expect.stringContaining('absent') })
    expect(await collections()).not.toContain('absent')
  })

  it("an existing collection with create 'never' is fine", async () => {
    await target.client.db(target.database).createCollection('present')
    expect(
      await connection.prepare({ collection: 'present', create: 'never' }, { signal }),
    ).toEqual({
      existed: true,
      actions: [],
    })
  })

  it('a unique index on the source primary key when the document id is not the key', async () => {
    const result = await connection.prepare(
      { collection: 'orders' },
      { signal, schema: ordersSchema },
    )
    expect(result.existed).toBe(false)
    const keyIndex = (await indexes('orders')).find((index) => index.name !== '_id_')
    expect(keyIndex).toMatchObject({ key: { tenant: 1, order_no: 1 }, unique: true })
    // The key now holds: a second document with the same (tenant, order_no) is refused alone.
    const written = await connection.write(
      { collection: 'orders' },
      [
        { kind: 'document', id: 'a', content: { tenant: 't1', order_no: 7, total: 1 } },
        { kind: 'document', id: 'b', content: { tenant: 't1', order_no: 7, total: 2 } },
        { kind: 'document', id: 'c', content: { tenant: 't1', order_no: 8, total: 3 } },
      ],
      { signal },
    )
    expect(written.written).toBe(2)
    expect(written.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
    // Prepared again (a second run): the index is there, nothing to do.
    expect(
      await connection.prepare({ collection: 'orders' }, { signal, schema: ordersSchema }),
    ).toEqual({
      existed: true,
      actions: [],
    })
  })

  it('adds the key index to an existing collection that lacks it', async () => {
    await target.client.db(target.database).createCollection('legacy')
    const result = await connection.prepare(
      { collection: 'legacy' },
      { signal, schema: ordersSchema },
    )
    expect(result.existed).toBe(true)
    expect(result.actions).toHaveLength(1)
    expect((await indexes('legacy')).map((i) => i.key)).toContainEqual({ tenant: 1, order_no: 1 })
  })

  it("no index when the document id is the key (an 'id' primary key) or with keyIndex false", async () => {
    const byId: StreamSchema = { ...ordersSchema, primaryKey: ['id'] }
    await connection.prepare({ collection: 'by_id' }, { signal, schema: byId })
    expect((await indexes('by_id')).map((i) => i.name)).toEqual(['_id_'])
    await connection.prepare(
      { collection: 'no_index', keyIndex: false },
      { signal, schema: ordersSchema },
    )
    expect((await indexes('no_index')).map((i) => i.name)).toEqual(['_id_'])
  })

  it('a key column MongoDB cannot index as a top-level field is a config error naming it', async () => {
    const dotted: StreamSchema = {
      ...ordersSchema,
      columns: [
        { name: 'a.b', nativeType: 'int', type: { type: 'integer', bits: 32 }, nullable: false },
      ],
      primaryKey: ['a.b'],
    }
    await expect(
      connection.prepare({ collection: 'dotted' }, { signal, schema: dotted }),
    ).rejects.toMatchObject({ kind: 'config', message: expect.stringContaining('a.b') })
  })

  it('rejects an unknown create mode with the field path', async () => {
    await expect(
      connection.prepare({ collection: 'x', create: 'always' } as never, { signal }),
    ).rejects.toMatchObject({ kind: 'config', message: expect.stringContaining('create') })
  })
})
