import { randomBytes } from 'node:crypto'
import type { Data } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  type ElasticsearchTarget,
  elasticsearchSkipReason,
  openElasticsearchTarget,
  realUrl,
} from './__fixtures__/elasticsearch-env.js'
import { elasticsearchProvider } from './elasticsearch-provider.js'

const skip = await elasticsearchSkipReason()
let target: ElasticsearchTarget | undefined
const prefix = `nvisy-conformance-${randomBytes(4).toString('hex')}`
const source = () => `${prefix}-source`
const sink = () => `${prefix}-sink`

const numberOf = (data: Data): number => {
  if (data.kind !== 'document') throw new Error(`expected a document, got ${data.kind}`)
  return data.content.n as number
}

runProviderConformance({
  name: `elasticsearch (${realUrl ? 'NVISY_TEST_ELASTICSEARCH_URL' : 'emulator'})`,
  provider: elasticsearchProvider,
  skip,
  input: () => target!.input(),
  badCredentials: { input: (canary) => target!.badInput(canary), kind: 'auth' },
  badParams: { input: { credentials: {}, params: { url: 'ftp://nowhere' } }, path: '/params/url' },
  fixture: {
    async setup() {
      target = await openElasticsearchTarget()
    },
    async teardown() {
      await target?.client.indices.delete({ index: `${prefix}-*` }, { ignore: [404] })
      await target?.close()
    },
    async clear() {
      await target!.client.indices.delete({ index: `${prefix}-*` }, { ignore: [404] })
      // n is a long: the bad item's n is text the mapping refuses (a per-item 400).
      for (const index of [source(), sink()])
        await target!.client.indices.create({
          index,
          mappings: { properties: { n: { type: 'long' }, name: { type: 'keyword' } } },
        })
    },
    async seed(from, count) {
      const operations = []
      for (let i = from; i < from + count; i++)
        operations.push(
          { index: { _index: source(), _id: `item-${i}` } },
          { n: i, name: `item ${i}` },
        )
      const result = await target!.client.bulk({ operations, refresh: true })
      if (result.errors) throw new Error('seeding failed')
    },
    // n is unique and grows with the item number: reads are incremental and resume by range.
    stream: { index: source(), sortField: 'n', pageSize: 7 },
    itemNumber: numberOf,
    sink: {
      stream: { index: sink(), refresh: 'true' },
      makeItem: (i) => ({
        kind: 'document',
        id: `item-${i}`,
        content: { n: i, name: `item ${i}` },
      }),
      makeBadItem: () => ({
        kind: 'document',
        id: 'bad',
        content: { n: 'not a number', name: 'bad' },
      }),
      async storedItems() {
        await target!.refresh(sink())
        const result = await target!.client.search<{ n: number }>({ index: sink(), size: 10_000 })
        return result.hits.hits.map((hit) => hit._source!.n)
      },
    },
  },
})
