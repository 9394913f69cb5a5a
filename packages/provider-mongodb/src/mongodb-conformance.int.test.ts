import type { Data } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import { BSON, ObjectId } from 'mongodb'
import {
  type MongoTarget,
  mongoSkipReason,
  openMongoTarget,
  realUrl,
} from './__fixtures__/mongodb-env.js'
import { mongoProvider } from './mongodb-provider.js'

const skip = await mongoSkipReason()
let target: MongoTarget | undefined

/** Item i has an ObjectId _id that grows with i, so _id order is item order. */
const idOf = (i: number) => new ObjectId(i.toString(16).padStart(24, '0'))

const numberOf = (data: Data): number => {
  if (data.kind !== 'document') throw new Error(`expected a document, got ${data.kind}`)
  return BSON.EJSON.deserialize(data.content, { relaxed: true }).n as number
}

runProviderConformance({
  name: `mongodb (${realUrl ? 'NVISY_TEST_MONGODB_URL' : 'emulator'})`,
  provider: mongoProvider,
  skip,
  input: () => target!.input(),
  badCredentials: { input: (canary) => target!.badInput(canary), kind: 'auth' },
  badParams: { input: { credentials: {}, params: { database: '' } }, path: '/params/database' },
  fixture: {
    async setup() {
      target = await openMongoTarget()
      // The bad item repeats item 0's n: the unique index refuses it (code 11000).
      await target.client
        .db(target.database)
        .collection('sink')
        .createIndex({ n: 1 }, { unique: true })
    },
    async teardown() {
      await target?.close()
    },
    async clear() {
      const db = target!.client.db(target!.database)
      await db.collection('source').deleteMany({})
      await db.collection('sink').deleteMany({})
    },
    async seed(from, count) {
      const docs = Array.from({ length: count }, (_, k) => ({
        _id: idOf(from + k),
        n: from + k,
        name: `item ${from + k}`,
      }))
      await target!.client.db(target!.database).collection('source').insertMany(docs)
    },
    stream: { collection: 'source', batchSize: 7 },
    itemNumber: numberOf,
    sink: {
      stream: { collection: 'sink' },
      makeItem: (i) => ({
        kind: 'document',
        id: `item-${i}`,
        content: { n: i, name: `item ${i}` },
      }),
      makeBadItem: () => ({
        kind: 'document',
        id: 'duplicate-n',
        content: { n: 0, name: 'repeats n 0' },
      }),
      async storedItems() {
        const docs = await target!.client.db(target!.database).collection('sink').find({}).toArray()
        return docs.map((doc) => doc.n as number)
      },
    },
  },
})
