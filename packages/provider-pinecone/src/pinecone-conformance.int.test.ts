import type { EmbeddingData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import type { Index } from '@pinecone-database/pinecone'
import {
  clearNamespace,
  itemId,
  listAll,
  openTestEnv,
  type PineconeTestEnv,
  randomSuffix,
  vectorFor,
} from './__fixtures__/pinecone-env.js'
import { pineconeProvider } from './index.js'

let env: PineconeTestEnv
const namespace = `nvisy-conformance-${randomSuffix()}`
const sinkNamespace = `${namespace}-sink`
let source: Index
let sink: Index

const numberOf = (id: string) => Number(id.slice('item-'.length))

function item(i: number): EmbeddingData {
  return {
    kind: 'embedding',
    id: itemId(i),
    values: vectorFor(i, env.dimension),
    metadata: { n: i, tag: 'conformance' },
  }
}

runProviderConformance({
  name: 'pinecone',
  provider: pineconeProvider,
  input: () => env.input(),
  badCredentials: {
    input: (canary) => ({ ...env.input(), credentials: { apiKey: canary } }),
  },
  badParams: {
    input: { credentials: { apiKey: 'x' }, params: { index: 'Not A Valid Name!' } },
    path: '/params/index',
  },
  fixture: {
    async setup() {
      env = await openTestEnv()
      source = await env.index(namespace)
      sink = await env.index(sinkNamespace)
    },
    async teardown() {
      if (source) await clearNamespace(source)
      if (sink) await clearNamespace(sink)
      await env?.close()
    },
    async clear() {
      await clearNamespace(source)
      await clearNamespace(sink)
      await env.settle()
    },
    async seed(from, count) {
      const records = Array.from({ length: count }, (_, k) => {
        const data = item(from + k)
        return { id: data.id, values: data.values as number[], metadata: { n: from + k } }
      })
      for (let start = 0; start < records.length; start += 500) {
        await source.upsert({ records: records.slice(start, start + 500) })
      }
      await env.settle()
    },
    stream: { namespace },
    itemNumber: (data) => numberOf((data as EmbeddingData).id),
    sink: {
      stream: { namespace: sinkNamespace },
      makeItem: (i) => item(i),
      makeBadItem: () => ({
        kind: 'embedding',
        id: itemId(2),
        values: vectorFor(2, env.dimension),
        metadata: { nested: { not: 'allowed' } },
      }),
      async storedItems() {
        await env.settle()
        return (await listAll(sink)).map(numberOf)
      },
    },
  },
})
