import { randomBytes } from 'node:crypto'
import type { Data } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  type OpenSearchTarget,
  openOpenSearchTarget,
  opensearchSkipReason,
  realUrl,
} from './__fixtures__/opensearch-env.js'
import { opensearchProvider } from './opensearch-provider.js'

const skip = await opensearchSkipReason()
let target: OpenSearchTarget | undefined
const prefix = `nvisy-conformance-${randomBytes(4).toString('hex')}`
const source = () => `${prefix}-source`
const sink = () => `${prefix}-sink`

const numberOf = (data: Data): number => {
  if (data.kind !== 'document') throw new Error(`expected a document, got ${data.kind}`)
  return data.content.n as number
}

runProviderConformance({
  name: `opensearch (${realUrl ? 'NVISY_TEST_OPENSEARCH_URL' : 'emulator'})`,
  provider: opensearchProvider,
  skip,
  input: () => target!.input(),
  badCredentials: { input: (canary) => target!.badInput(canary), kind: 'auth' },
  badParams: { input: { credentials: {}, params: { url: 'ftp://nowhere' } }, path: '/params/url' },
  fixture: {
    async setup() {
      target = await openOpenSearchTarget()
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
          body: { mappings: { properties: { n: { type: 'long' }, name: { type: 'keyword' } } } },
        })
    },
    async seed(from, count) {
      const operations = []
      for (let i = from; i < from + count; i++)
        operations.push(
          { index: { _index: source(), _id: `item-${i}` } },
          { n: i, name: `item ${i}` },
        )
      const { body: result } = await target!.client.bulk({ body: operations as any, refresh: true })
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
        const { body: result } = await target!.client.search({ index: sink(), size: 10_000 })
        return result.hits.hits.map((hit: any) => hit._source.n as number)
      },
    },
  },
})
