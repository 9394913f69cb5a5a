import { describe, expect, it } from 'vitest'
import type { ReadItem } from './contract.js'
import { ProviderError } from './errors.js'
import { checkSearchHealth } from './search-cluster.js'
import { HIT_RAW_JSON, stringifyExact } from './search-hits.js'
import {
  readSearchIndex,
  type SearchReadBackend,
  type SearchReadContext,
  type SearchReadHit,
  type SearchReadResponse,
  searchHitToData,
} from './search-read.js'

// A backend over an in-memory list of hits, sorted by `_shard_doc` (the hit's position): it
// answers pages of `size` after `search_after`, and records every request.
function listBackend(
  hits: SearchReadHit[],
  page?: (body: Record<string, unknown>) => SearchReadResponse,
) {
  const calls: { op: string; body?: Record<string, unknown>; id?: string }[] = []
  let pits = 0
  const backend: SearchReadBackend = {
    product: 'Elasticsearch',
    async openPit(index) {
      pits++
      calls.push({ op: 'openPit', id: index })
      return `pit-${pits}`
    },
    async closePit(id) {
      calls.push({ op: 'closePit', id })
    },
    async search(body) {
      calls.push({ op: 'search', body })
      if (page) return page(body)
      const after = (body.search_after as number[] | undefined)?.[0] ?? -1
      const size = body.size as number
      const rest = hits.map((hit, i) => ({ ...hit, sort: [i] })).filter((_hit, i) => i > after)
      return { pit_id: (body.pit as { id: string }).id, hits: { hits: rest.slice(0, size) } }
    },
  }
  return { backend, calls }
}

const docs = (n: number): SearchReadHit[] =>
  Array.from({ length: n }, (_v, i) => ({ _index: 'idx', _id: `d${i}`, _source: { n: i } }))

async function all<C>(items: AsyncIterable<ReadItem<C>>): Promise<ReadItem<C>[]> {
  const out: ReadItem<C>[] = []
  for await (const item of items) out.push(item)
  return out
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError)
    return error as ProviderError
  }
  throw new Error('expected a ProviderError')
}

const signal = new AbortController().signal

describe('readSearchIndex', () => {
  it('reads every hit in _shard_doc order over full pages, the last context marked end', async () => {
    const { backend, calls } = listBackend(docs(5))
    const items = await all(
      readSearchIndex(backend, { index: 'idx', pageSize: 2 }, undefined, signal),
    )
    expect(items.map((i) => i.data)).toEqual(
      docs(5).map((d) => ({ kind: 'document', id: d._id, content: d._source })),
    )
    expect(items.map((i) => i.context.end)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      true,
    ])
    expect(items[1]!.context).toEqual({ id: 'd1', pit: 'pit-1', after: [1] })
    const searches = calls.filter((c) => c.op === 'search').map((c) => c.body!)
    expect(searches[0]).toEqual({
      pit: { id: 'pit-1', keep_alive: '5m' },
      size: 2,
      sort: [{ _shard_doc: 'asc' }],
      track_total_hits: false,
    })
    expect(searches.map((b) => b.search_after)).toEqual([undefined, [1], [3]])
    // A finished read closes its point in time.
    expect(calls.at(-1)).toEqual({ op: 'closePit', id: 'pit-1' })
  })

  it('marks the last hit of a full last page as the end once the next page is empty', async () => {
    const { backend } = listBackend(docs(4))
    const items = await all(
      readSearchIndex(backend, { index: 'idx', pageSize: 2 }, undefined, signal),
    )
    expect(items.map((i) => [i.context.id, i.context.end])).toEqual([
      ['d0', undefined],
      ['d1', undefined],
      ['d2', undefined],
      ['d3', true],
    ])
  })

  it('resumes in the context point in time after its sort values, and not after an end', async () => {
    const { backend, calls } = listBackend(docs(5))
    const after: SearchReadContext = { id: 'd2', pit: 'pit-old', after: [2] }
    const items = await all(readSearchIndex(backend, { index: 'idx', pageSize: 10 }, after, signal))
    expect(items.map((i) => i.context.id)).toEqual(['d3', 'd4'])
    expect(calls[0]).toMatchObject({
      op: 'search',
      body: { pit: { id: 'pit-old' }, search_after: [2] },
    })
    const ended = listBackend(docs(5))
    const none = await all(
      readSearchIndex(
        ended.backend,
        { index: 'idx' },
        { id: 'd4', pit: 'p', after: [4], end: true },
        signal,
      ),
    )
    expect(none).toEqual([])
    expect(ended.calls).toEqual([])
  })

  it('with sortField and tiebreakField: filters, sorts and resumes after (key, tie), exact numbers as written', async () => {
    const { backend, calls } = listBackend([], () => ({ hits: { hits: [] } }))
    await all(
      readSearchIndex(
        backend,
        { index: 'idx', sortField: 'seq', tiebreakField: 'uid', query: { term: { a: 1 } } },
        { id: 'x', key: { number: '9007199254740993' }, tie: 'u7' },
        signal,
      ),
    )
    const body = calls.find((c) => c.op === 'search')!.body!
    expect(body.sort).toEqual([{ seq: 'asc' }, { uid: 'asc' }])
    const text = stringifyExact(body)!
    expect(text).toContain('{"term":{"a":1}}')
    expect(text).toContain('{"exists":{"field":"seq"}}')
    expect(text).toContain('{"exists":{"field":"uid"}}')
    expect(text).toContain('{"range":{"seq":{"gt":9007199254740993}}}')
    expect(text).toContain('{"range":{"uid":{"gt":"u7"}}}')
    // A sortField read's contexts do not need the point in time: it is closed.
    expect(calls.at(-1)).toEqual({ op: 'closePit', id: 'pit-1' })
  })

  it('gives a sortField read contexts with the sort value, and keeps only asked _source fields', async () => {
    const { backend, calls } = listBackend([], () => ({
      hits: { hits: [{ _index: 'idx', _id: 'a', _source: { seq: 5 }, sort: [5, 'k'] }] },
    }))
    const items = await all(
      readSearchIndex(
        backend,
        { index: 'idx', sortField: 'seq', tiebreakField: 'uid', sourceIncludes: ['title'] },
        undefined,
        signal,
      ),
    )
    expect(items.map((i) => i.context)).toEqual([{ id: 'a', key: 5, tie: 'k' }])
    expect(calls.find((c) => c.op === 'search')!.body!._source).toEqual(['title', 'seq', 'uid'])
  })

  it('refuses settings and contexts that do not fit, naming them, before any request', async () => {
    const cases: [Parameters<typeof readSearchIndex>[1], SearchReadContext | undefined, string][] =
      [
        [
          { index: 'i', tiebreakField: 't' },
          undefined,
          'stream.tiebreakField needs stream.sortField',
        ],
        [{ index: 'i', data: 'embedding' }, undefined, 'stream.vectorField is required'],
        [{ index: 'i', sortField: 's' }, { id: 'x', pit: 'p', after: [] }, 'no sortField value'],
        [
          { index: 'i', sortField: 's', tiebreakField: 't' },
          { id: 'x', key: 1 },
          'no tiebreakField value',
        ],
        [{ index: 'i' }, { id: 'x', key: 1 }, 'no point in time'],
        [{ index: 'i', sortField: 's' }, { id: 'x', key: { number: 'abc' } }, 'resume context key'],
      ]
    for (const [stream, after, message] of cases) {
      const { backend, calls } = listBackend([])
      const error = await failure(all(readSearchIndex(backend, stream, after, signal)))
      expect(error.kind).toBe('config')
      expect(error.message).toContain(message)
      expect(calls).toEqual([])
    }
  })

  it('refuses a page some shards failed, naming the product', async () => {
    const { backend, calls } = listBackend([], () => ({
      _shards: { total: 3, failed: 1 },
      hits: { hits: [] },
    }))
    const error = await failure(
      all(readSearchIndex(backend, { index: 'idx', sortField: 's' }, undefined, signal)),
    )
    expect(error.kind).toBe('transient')
    expect(error.message).toBe(
      'Elasticsearch: 1 of 3 shards failed the search; the page would be incomplete',
    )
    expect(calls.at(-1)).toEqual({ op: 'closePit', id: 'pit-1' })
  })

  it('says an expired point in time cannot be resumed in', async () => {
    const { backend } = listBackend([], () => {
      throw Object.assign(new Error('gone'), {
        name: 'ResponseError',
        meta: { statusCode: 404, body: { error: { type: 'search_context_missing_exception' } } },
      })
    })
    const error = await failure(
      all(
        readSearchIndex(
          backend,
          { index: 'idx', keepAlive: '1m' },
          { id: 'x', pit: 'p', after: [1] },
          signal,
        ),
      ),
    )
    expect(error.kind).toBe('config')
    expect(error.message).toContain('has expired (keepAlive 1m)')
  })
})

describe('searchHitToData', () => {
  it('gives the _source as a document, with its exact number text', () => {
    const hit: SearchReadHit = { _index: 'i', _id: 'a', _source: { n: 1 } }
    Object.defineProperty(hit, HIT_RAW_JSON, { value: { n: '1.000' }, enumerable: false })
    expect(searchHitToData(hit, {})).toEqual({
      kind: 'document',
      id: 'a',
      content: { n: 1 },
      rawJson: { n: '1.000' },
    })
  })

  it('gives the vector field as an embedding, the rest as metadata, or a data error', () => {
    const stream = { data: 'embedding' as const, vectorField: 'v' }
    expect(
      searchHitToData({ _index: 'i', _id: 'a', _source: { v: [1, 2], t: 'x' } }, stream),
    ).toEqual({ kind: 'embedding', id: 'a', values: [1, 2], metadata: { t: 'x' } })
    let error: unknown
    try {
      searchHitToData({ _index: 'i', _id: 'b', _source: { v: 'no' } }, stream)
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({ kind: 'data', operation: 'read' })
    expect((error as Error).message).toBe(
      'document "b" in i has no numeric array in vectorField "v"',
    )
  })
})

describe('checkSearchHealth', () => {
  const classify = (error: unknown) =>
    (error as { meta?: { statusCode?: number } })?.meta?.statusCode === 403
      ? { kind: 'auth' }
      : undefined
  const health = (answer: () => Promise<{ status: string }>) => ({
    product: 'OpenSearch',
    health: answer,
  })

  it('passes a green or yellow cluster and refuses a red one as transient', async () => {
    await checkSearchHealth(
      health(async () => ({ status: 'yellow' })),
      classify,
      signal,
    )
    const error = await failure(
      checkSearchHealth(
        health(async () => ({ status: 'red' })),
        classify,
        signal,
      ),
    )
    expect(error.kind).toBe('transient')
    expect(error.message).toBe(
      'OpenSearch cluster health is red: some primary shards are unassigned',
    )
  })

  it('passes credentials that may not read health (auth, 403) and rethrows other errors', async () => {
    const forbidden = Object.assign(new Error('forbidden'), { meta: { statusCode: 403 } })
    await checkSearchHealth(
      health(() => Promise.reject(forbidden)),
      classify,
      signal,
    )
    const down = Object.assign(new Error('down'), { meta: { statusCode: 503 } })
    await expect(
      checkSearchHealth(
        health(() => Promise.reject(down)),
        classify,
        signal,
      ),
    ).rejects.toBe(down)
  })
})
