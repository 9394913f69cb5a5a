import type { Data, MessageData } from '@nvisy/provider-core'
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
const prefix = `nvisy-test:${randomSuffix()}:`
const sourceKey = `${prefix}source`
const sinkKey = `${prefix}sink`
const admin = skip ? undefined : adminClient()
let aclUser = ''

const itemId = (i: number) => `item-${String(i).padStart(6, '0')}`
const numberOf = (id: string) => {
  const match = /^item-(\d+)$/.exec(id)
  if (!match) throw new Error(`not a fixture item id: ${id}`)
  return Number(match[1])
}

runProviderConformance({
  name: 'redis (stream)',
  provider: redisProvider,
  skip,
  input: () => redisInput(),
  badCredentials: {
    input: (canary) => {
      const t = redisTarget()
      return {
        credentials: { username: aclUser, password: canary },
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
      aclUser = await createAclUser(admin!)
    },
    async teardown() {
      await deleteKeys(admin!, prefix)
      await admin!.call('ACL', 'DELUSER', aclUser)
      admin!.disconnect()
    },
    clear: () => deleteKeys(admin!, prefix),
    async seed(from, count) {
      const pipeline = admin!.pipeline()
      for (let i = from; i < from + count; i++) {
        pipeline.xadd(
          sourceKey,
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
    stream: { kind: 'stream', key: sourceKey, count: 7 },
    itemNumber: (data: Data) => numberOf((data as MessageData).id),
    sink: {
      stream: { kind: 'stream', key: sinkKey },
      makeItem: (i) => ({
        kind: 'message',
        id: itemId(i),
        payload: Buffer.from(`message ${i}`),
        headers: { n: String(i) },
      }),
      // A message without an id cannot be deduplicated: the sink refuses it.
      makeBadItem: () => ({ kind: 'message', id: '', payload: Buffer.from('no id') }),
      async storedItems() {
        const entries = await admin!.xrange(sinkKey, '-', '+')
        return entries.map(([, fields]) => numberOf(fields[fields.indexOf('nvisy-id') + 1]!))
      },
    },
  },
})
