import type { Data, DocumentData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  adminClient,
  createAclUser,
  deleteKeys,
  randomSuffix,
  redisInput,
  redisSkipReason,
  redisTarget,
} from './__fixtures__/redis-env.js'
import { redisProvider } from './index.js'

// SCAN pages are only repeatable while the database's keyspace is unchanged, so this file
// uses a database of its own (the other test files write to the default one in parallel).
const DB = Number(process.env.NVISY_TEST_REDIS_DOCUMENT_DB ?? 9)

const skip = await redisSkipReason()
const prefix = `nvisy-test:${randomSuffix()}:`
const sourcePrefix = `${prefix}src:`
const sinkPrefix = `${prefix}sink:`
const admin = skip ? undefined : adminClient(DB)
const aclAdmin = skip ? undefined : adminClient()
let aclUser = ''

const itemId = (i: number) => `item-${String(i).padStart(6, '0')}`
const numberOf = (id: string) => {
  const match = /^item-(\d+)$/.exec(id)
  if (!match) throw new Error(`not a fixture item id: ${id}`)
  return Number(match[1])
}

// Document reads follow SCAN, which has no order: the provider declares them not incremental
// (incrementalFor), so the kit skips its incremental test for this suite only.

runProviderConformance({
  name: 'redis (document)',
  provider: redisProvider,
  skip,
  input: () => redisInput(DB),
  badCredentials: {
    input: (canary) => {
      const t = redisTarget(DB)
      return {
        credentials: { username: aclUser, password: canary },
        params: { host: t.host, port: t.port, db: DB },
      }
    },
  },
  badParams: {
    input: { credentials: {}, params: { host: '127.0.0.1', db: -1 } },
    path: '/params/db',
  },
  fixture: {
    async setup() {
      aclUser = await createAclUser(aclAdmin!)
    },
    async teardown() {
      await deleteKeys(admin!, prefix)
      await aclAdmin!.call('ACL', 'DELUSER', aclUser)
      admin!.disconnect()
      aclAdmin!.disconnect()
    },
    clear: () => deleteKeys(admin!, prefix),
    async seed(from, count) {
      const pipeline = admin!.pipeline()
      for (let i = from; i < from + count; i++) {
        pipeline.set(sourcePrefix + itemId(i), JSON.stringify({ n: i, name: `document ${i}` }))
      }
      await pipeline.exec()
    },
    // A small SCAN page, so resuming crosses pages.
    stream: { kind: 'document', prefix: sourcePrefix, count: 5 },
    itemNumber: (data: Data) => numberOf((data as DocumentData).id),
    sink: {
      stream: { kind: 'document', prefix: sinkPrefix },
      makeItem: (i) => ({
        kind: 'document',
        id: itemId(i),
        content: { n: i, name: `document ${i}` },
      }),
      // A bigint has no JSON form: the sink refuses the document.
      makeBadItem: () => ({
        kind: 'document',
        id: 'bad',
        content: { n: 10n as unknown as number },
      }),
      async storedItems() {
        const keys: string[] = []
        let cursor = '0'
        do {
          const [next, found] = await admin!.scan(cursor, 'MATCH', `${sinkPrefix}*`, 'COUNT', 1000)
          cursor = next
          keys.push(...found)
        } while (cursor !== '0')
        const unique = [...new Set(keys)]
        if (unique.length === 0) return []
        const values = await admin!.mget(...unique)
        return values.map((value) => (JSON.parse(value!) as { n: number }).n)
      },
    },
  },
})
