// The conformance kit, run twice: over a Redis stream (messages) and over JSON documents at
// keys under a prefix. Other behaviour is tested in redis-provider.int.test.ts.
import type { Data, DocumentData, MessageData } from '@nvisy/provider-core'
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

const skip = await redisSkipReason()

const itemId = (i: number) => `item-${String(i).padStart(6, '0')}`
const numberOf = (id: string) => {
  const match = /^item-(\d+)$/.exec(id)
  if (!match) throw new Error(`not a fixture item id: ${id}`)
  return Number(match[1])
}

const streamPrefix = `nvisy-test:${randomSuffix()}:`
const streamSourceKey = `${streamPrefix}source`
const streamSinkKey = `${streamPrefix}sink`
const streamAdmin = skip ? undefined : adminClient()
let streamAclUser = ''

runProviderConformance({
  name: 'redis (stream)',
  provider: redisProvider,
  skip,
  input: () => redisInput(),
  badCredentials: {
    input: (canary) => {
      const t = redisTarget()
      return {
        credentials: { username: streamAclUser, password: canary },
        params: { host: t.host, port: t.port },
      }
    },
  },
  badParams: {
    input: { credentials: {}, params: { host: '127.0.0.1', port: 70000 } },
    path: '/params/port',
  },
  fixture: {
    async setup() {
      streamAclUser = await createAclUser(streamAdmin!)
    },
    async teardown() {
      await deleteKeys(streamAdmin!, streamPrefix)
      await streamAdmin!.call('ACL', 'DELUSER', streamAclUser)
      streamAdmin!.disconnect()
    },
    clear: () => deleteKeys(streamAdmin!, streamPrefix),
    async seed(from, count) {
      const pipeline = streamAdmin!.pipeline()
      for (let i = from; i < from + count; i++) {
        pipeline.xadd(
          streamSourceKey,
          '*',
          'nvisy-id',
          itemId(i),
          'payload',
          Buffer.from(`payload ${i}`),
          'h:n',
          String(i),
        )
      }
      await pipeline.exec()
    },
    // A small page size, so resuming crosses XRANGE pages.
    stream: { kind: 'stream', key: streamSourceKey, count: 7 },
    itemNumber: (data: Data) => numberOf((data as MessageData).id),
    sink: {
      stream: { kind: 'stream', key: streamSinkKey },
      makeItem: (i) => ({
        kind: 'message',
        id: itemId(i),
        payload: Buffer.from(`message ${i}`),
        headers: { n: String(i) },
      }),
      // A message without an id cannot be deduplicated: the sink refuses it.
      makeBadItem: () => ({ kind: 'message', id: '', payload: Buffer.from('no id') }),
      async storedItems() {
        const entries = await streamAdmin!.xrange(streamSinkKey, '-', '+')
        return entries.map(([, fields]) => numberOf(fields[fields.indexOf('nvisy-id') + 1]!))
      },
    },
  },
})

// SCAN pages are only repeatable while the database's keyspace is unchanged, so the document
// suite uses a database of its own (the stream suite above and the other test files, which
// run in parallel, write to the default one).
const DB = Number(process.env.NVISY_TEST_REDIS_DOCUMENT_DB ?? 9)

const documentPrefix = `nvisy-test:${randomSuffix()}:`
const documentSourcePrefix = `${documentPrefix}src:`
const documentSinkPrefix = `${documentPrefix}sink:`
const documentAdmin = skip ? undefined : adminClient(DB)
const documentAclAdmin = skip ? undefined : adminClient()
let documentAclUser = ''

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
        credentials: { username: documentAclUser, password: canary },
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
      documentAclUser = await createAclUser(documentAclAdmin!)
    },
    async teardown() {
      await deleteKeys(documentAdmin!, documentPrefix)
      await documentAclAdmin!.call('ACL', 'DELUSER', documentAclUser)
      documentAdmin!.disconnect()
      documentAclAdmin!.disconnect()
    },
    clear: () => deleteKeys(documentAdmin!, documentPrefix),
    async seed(from, count) {
      const pipeline = documentAdmin!.pipeline()
      for (let i = from; i < from + count; i++) {
        pipeline.set(
          documentSourcePrefix + itemId(i),
          JSON.stringify({ n: i, name: `document ${i}` }),
        )
      }
      await pipeline.exec()
    },
    // A small SCAN page, so resuming crosses pages.
    stream: { kind: 'document', prefix: documentSourcePrefix, count: 5 },
    itemNumber: (data: Data) => numberOf((data as DocumentData).id),
    sink: {
      stream: { kind: 'document', prefix: documentSinkPrefix },
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
          const [next, found] = await documentAdmin!.scan(
            cursor,
            'MATCH',
            `${documentSinkPrefix}*`,
            'COUNT',
            1000,
          )
          cursor = next
          keys.push(...found)
        } while (cursor !== '0')
        const unique = [...new Set(keys)]
        if (unique.length === 0) return []
        const values = await documentAdmin!.mget(...unique)
        return values.map((value) => (JSON.parse(value!) as { n: number }).n)
      },
    },
  },
})
