import { startSearchEmulator } from '@nvisy/emulators'
import {
  type DocumentData,
  type GuardedConnection,
  ProviderError,
  type ReadItem,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type OpenSearchTarget,
  openOpenSearchTarget,
  opensearchSkipReason,
  realUrl,
} from './__fixtures__/opensearch-env.js'
import { opensearchProvider } from './index.js'
import type { OpenSearchContext } from './opensearch-schemas.js'

const skip = await opensearchSkipReason()
const signal = () => new AbortController().signal

/** The items of `stream` after `after`, at most `limit` (the read is stopped there). */
function collect(
  connection: GuardedConnection,
  stream: Record<string, unknown>,
  after?: unknown,
  limit?: number,
): Promise<ReadItem<OpenSearchContext>[]> {
  return readAll<OpenSearchContext>(connection, stream, { after, limit })
}

const ns = (items: ReadItem[]) =>
  items.map((item) => (item.data.kind === 'document' ? (item.data.content.n as number) : -1))

async function errorOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error), `not a ProviderError: ${String(error)}`).toBe(true)
  return error as ProviderError
}

describe.skipIf(skip)(`opensearch provider (${realUrl ? 'cluster' : 'emulator'})`, () => {
  let target: OpenSearchTarget
  let connection: GuardedConnection
  const index = (name: string) => `${target.prefix}-${name}`

  beforeAll(async () => {
    target = await openOpenSearchTarget()
    connection = await opensearchProvider.connect(target.input())
  })
  afterAll(async () => {
    await connection?.close()
    await target?.close()
  })
  beforeEach(async () => {
    await target.client.indices.delete({ index: `${target.prefix}-*` }, { ignore: [404] })
  })

  async function seed(name: string, count: number, extra: (i: number) => object = () => ({})) {
    await target.client.indices.create(
      {
        index: index(name),
        body: { mappings: { properties: { n: { type: 'long' }, tag: { type: 'keyword' } } } },
      },
      { ignore: [400] },
    )
    const operations = []
    for (let i = 0; i < count; i++)
      operations.push(
        { index: { _index: index(name), _id: `d${i}` } },
        { n: i, tag: i % 2 === 0 ? 'even' : 'odd', ...extra(i) },
      )
    const { body: result } = await target.client.bulk({ body: operations as any, refresh: true })
    expect(result.errors).toBe(false)
  }

  it('check reports the version and refuses unsupported majors and other products', async () => {
    await expect(connection.check()).resolves.toBeUndefined()
    const old = await startSearchEmulator({ flavor: 'opensearch', version: '2.3.0' })
    const openSearch = await startSearchEmulator({ flavor: 'elasticsearch' })
    try {
      const tooOld = await opensearchProvider.connect({
        credentials: {},
        params: { url: old.url, maxRetries: 0 },
      })
      const error = await errorOf(tooOld.check())
      expect(error.kind).toBe('config')
      expect(error.message).toMatch(/2\.3\.0 is not supported/)
      await tooOld.close()
      const wrong = await opensearchProvider.connect({
        credentials: {},
        params: { url: openSearch.url, maxRetries: 0 },
      })
      const product = await errorOf(wrong.check())
      expect(product.kind).toBe('config')
      expect(product.message).toMatch(/not OpenSearch/)
      await wrong.close()
    } finally {
      await old.close()
      await openSearch.close()
    }
  })

  it('authenticates with a bearer token; an unreadable CA file is a config error', async () => {
    const server = await startSearchEmulator({ flavor: 'opensearch', bearerTokens: ['token-1'] })
    try {
      const params = { url: server.url, maxRetries: 0 }
      const ok = await opensearchProvider.connect({
        credentials: { bearerToken: 'token-1' },
        params,
      })
      await expect(ok.check()).resolves.toBeUndefined()
      await ok.close()
      const refused = await opensearchProvider.connect({
        credentials: { bearerToken: 'nvisy-wrong-token' },
        params,
      })
      const error = await errorOf(refused.check())
      expect(error.kind).toBe('auth')
      expect(error.message).not.toContain('nvisy-wrong-token')
      await refused.close()
      const ca = await errorOf(
        opensearchProvider.connect({
          credentials: {},
          params: { ...params, caFile: '/nonexistent/ca.pem' },
        }),
      )
      expect(ca.kind).toBe('config')
      expect(ca.message).toMatch(/caFile/)
    } finally {
      await server.close()
    }
  })

  it('a _shard_doc read is one consistent point in time and resumes in it', async () => {
    await seed('shard', 23)
    const stream = { index: index('shard'), pageSize: 5 }
    const head = await collect(connection, stream, undefined, 8)
    expect(head).toHaveLength(8)
    // Written after the point in time opened: the resumed read does not see it.
    await target.client.index({
      index: index('shard'),
      id: 'late',
      body: { n: 100 },
      refresh: true,
    })
    const rest = await collect(connection, stream, JSON.parse(JSON.stringify(head[7]!.context)))
    expect([...ns(head), ...ns(rest)].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 23 }, (_, i) => i),
    )
    // The last context of a finished read resumes to nothing.
    expect(await collect(connection, stream, rest.at(-1)!.context)).toEqual([])
  })

  it.skipIf(realUrl)(
    'a _shard_doc context after its point in time expired is a config error naming sortField',
    async () => {
      await seed('expired', 10)
      const stream = { index: index('expired'), pageSize: 3 }
      const head = await collect(connection, stream, undefined, 2)
      target.emulator!.server.expirePits()
      const error = await errorOf(collect(connection, stream, head[1]!.context))
      expect(error.kind).toBe('config')
      expect(error.message).toMatch(/sortField/)
    },
  )

  it.skipIf(realUrl)('a sortField context outlives its point in time', async () => {
    await seed('sorted', 15)
    const stream = { index: index('sorted'), sortField: 'n', pageSize: 4 }
    const head = await collect(connection, stream, undefined, 6)
    target.emulator!.server.expirePits()
    const rest = await collect(connection, stream, head[5]!.context)
    expect(ns(rest)).toEqual(Array.from({ length: 9 }, (_, i) => i + 6))
    // Each sortField read closes its point in time.
    expect(target.emulator!.server.pits.size).toBe(0)
  })

  it('a growing, non-unique sortField with a tiebreakField resumes exactly inside a tie, after the point in time, and incrementally', async () => {
    await target.client.indices.create({
      index: index('ticks'),
      body: {
        mappings: {
          properties: { n: { type: 'long' }, at: { type: 'date' }, key: { type: 'keyword' } },
        },
      },
    })
    // Four documents share each timestamp: only (at, key) orders them.
    const put = async (from: number, count: number) => {
      const operations = []
      for (let i = from; i < from + count; i++)
        operations.push(
          { index: { _index: index('ticks'), _id: `t${i}` } },
          {
            n: i,
            at: new Date(Date.UTC(2024, 0, 1) + Math.floor(i / 4) * 1000).toISOString(),
            key: `k${String(i).padStart(4, '0')}`,
          },
        )
      await target.client.bulk({ body: operations as any, refresh: true })
    }
    await put(0, 30)
    const stream = { index: index('ticks'), sortField: 'at', tiebreakField: 'key', pageSize: 5 }
    const all = await collect(connection, stream)
    expect(ns(all)).toEqual(Array.from({ length: 30 }, (_, i) => i))
    for (const k of [0, 1, 2, 5, 13, 28]) {
      const head = await collect(connection, stream, undefined, k + 1)
      if (!realUrl) target.emulator!.server.expirePits()
      const rest = await collect(connection, stream, JSON.parse(JSON.stringify(head[k]!.context)))
      expect(ns(rest), `resume after ${k}`).toEqual(
        Array.from({ length: 29 - k }, (_, i) => i + k + 1),
      )
    }
    await put(30, 6)
    const fresh = await collect(connection, stream, all.at(-1)!.context)
    expect(ns(fresh)).toEqual([30, 31, 32, 33, 34, 35])
  })

  it('reads only what the query matches, and slices split the read into disjoint parts', async () => {
    await seed('query', 20)
    const even = await collect(connection, {
      index: index('query'),
      sortField: 'n',
      query: { term: { tag: 'even' } },
    })
    expect(ns(even)).toEqual(Array.from({ length: 10 }, (_, i) => i * 2))
    const parts = await Promise.all(
      [0, 1, 2].map((id) =>
        collect(connection, { index: index('query'), pageSize: 4, slice: { id, max: 3 } }),
      ),
    )
    const all = parts.flatMap(ns).sort((a, b) => a - b)
    expect(all).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(parts.every((part) => part.length > 0)).toBe(true)
  })

  it('writes and reads embeddings through a knn_vector field', async () => {
    const stream = {
      index: index('vectors'),
      refresh: 'true',
      data: 'embedding',
      vectorField: 'vec',
      settings: { 'index.knn': true },
      mappings: {
        properties: { vec: { type: 'knn_vector', dimension: 3 }, label: { type: 'keyword' } },
      },
    }
    const result = await connection.write(
      stream,
      [
        { kind: 'embedding', id: 'a', values: [0.5, -1, 2], metadata: { label: 'first' } },
        {
          kind: 'embedding',
          id: 'b',
          values: new Float32Array([0.25, 0, 1]),
          metadata: { label: 'second' },
        },
        { kind: 'embedding', id: 'short', values: [1, 2], metadata: {} },
      ],
      { signal: signal() },
    )
    expect(result.written).toBe(2)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[2, 'data']])
    expect(result.failed[0]!.error.message).toMatch(/dimensions/)
    const items = await collect(connection, {
      index: index('vectors'),
      data: 'embedding',
      vectorField: 'vec',
    })
    const byId = Object.fromEntries(items.map((item) => [(item.data as any).id, item.data]))
    expect(byId.a).toEqual({
      kind: 'embedding',
      id: 'a',
      values: [0.5, -1, 2],
      metadata: { label: 'first' },
    })
    expect(byId.b).toMatchObject({ values: [0.25, 0, 1], metadata: { label: 'second' } })
  })

  it.skipIf(realUrl)('closes _bulk requests by bytes as well as items', async () => {
    const server = target.emulator!.server
    const before = server.requests.length
    const batch = Array.from({ length: 40 }, (_, i) => ({
      kind: 'document' as const,
      id: `big-${i}`,
      content: { n: i, text: 'x'.repeat(1000) },
    }))
    const result = await connection.write(
      { index: index('bytes'), maxBulkBytes: 8 * 1024, maxBulkItems: 1000 },
      batch,
      { signal: signal() },
    )
    expect(result).toEqual({ written: 40, failed: [] })
    const bulks = server.requests.slice(before).filter((r) => r.path === '/_bulk')
    expect(bulks.length).toBeGreaterThanOrEqual(5)
    expect(bulks.every((r) => r.bytes <= 8 * 1024)).toBe(true)
    expect(bulks.reduce((sum, r) => sum + (r.actions ?? 0), 0)).toBe(40)
    expect((await target.client.count({ index: index('bytes') })).body.count).toBe(40)
  })

  it.skipIf(realUrl)(
    'retries items rejected with 429 and reports them when retries run out',
    async () => {
      const server = target.emulator!.server
      const batch = Array.from({ length: 6 }, (_, i) => ({
        kind: 'document' as const,
        id: `r-${i}`,
        content: { n: i },
      }))
      server.rejectBulkItems(3, 429)
      const retried = await connection.write({ index: index('retry') }, batch, { signal: signal() })
      expect(retried).toEqual({ written: 6, failed: [] })
      server.rejectBulkItems(2, 429)
      const given = await connection.write({ index: index('retry2'), maxItemRetries: 0 }, batch, {
        signal: signal(),
      })
      expect(given.written).toBe(4)
      expect(given.failed.map((f) => [f.index, f.error.kind])).toEqual([
        [0, 'rate_limited'],
        [1, 'rate_limited'],
      ])
    },
  )

  it('halves a _bulk request the server refuses as too large (413); an oversized document fails alone', async () => {
    const server = await startSearchEmulator({ flavor: 'opensearch', maxContentLength: 4096 })
    try {
      const small = await opensearchProvider.connect({
        credentials: {},
        params: { url: server.url, maxRetries: 0 },
      })
      const batch = Array.from({ length: 10 }, (_, i) => ({
        kind: 'document' as const,
        id: `s-${i}`,
        content: { n: i, text: 'y'.repeat(900) },
      }))
      batch.splice(4, 0, {
        kind: 'document',
        id: 'huge',
        content: { n: 99, text: 'z'.repeat(5000) },
      })
      const result = await small.write({ index: 'limited', maxBulkBytes: 1024 * 1024 }, batch, {
        signal: signal(),
      })
      expect(result.written).toBe(10)
      expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[4, 'data']])
      expect(result.failed[0]!.error.message).toMatch(/413/)
      expect(server.server.indices.get('limited')!.docs.size).toBe(10)
      await small.close()
    } finally {
      await server.close()
    }
  })

  it('writes exact JSON text (rawJson) as sent; a repeated key refuses the document naming the field', async () => {
    const name = index('raw')
    const stream = {
      index: name,
      refresh: 'true',
      mappings: { properties: { j: { type: 'object', enabled: false } } },
    }
    // Digits beyond 2^53 and beyond a double, a trailing zero, key order: as a JSON column holds them.
    const raw = '{"n":12345678901234567890123,"x":1e400,"d":2.50,"z":{"b":1,"a":2}}'
    const batch: DocumentData[] = [
      {
        kind: 'document',
        id: 'r1',
        content: { j: JSON.parse(raw), t: 'x' },
        rawJson: { j: raw },
      },
      {
        kind: 'document',
        id: 'r2',
        content: { j: { b: 3, a: 2 } },
        rawJson: { j: '{"b":1,"a":2,"b":3}' },
      },
    ]
    const result = await connection.write(stream, batch, { signal: signal() })
    expect(result.written).toBe(1)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
    expect(result.failed[0]!.error.message).toMatch(/field "j": its JSON text repeats the key "b"/)
    // The server's own text of the stored _source, not a client's parse of it.
    const { credentials, params } = target.input() as {
      credentials: Record<string, string>
      params: { url: string }
    }
    const headers: Record<string, string> = credentials.apiKey
      ? { authorization: `ApiKey ${credentials.apiKey}` }
      : credentials.username
        ? {
            authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`,
          }
        : {}
    const response = await fetch(`${params.url}/${name}/_doc/r1`, { headers })
    expect(response.status).toBe(200)
    expect(await response.text()).toContain(`"_source":{"j":${raw},"t":"x"}`)
    const missing = await fetch(`${params.url}/${name}/_doc/r2`, { headers })
    expect(missing.status).toBe(404)
  })

  it('reads numbers JSON.parse changes exactly: rawJson per field, long sort values resume as written', async () => {
    const name = index('exact')
    const { credentials, params } = target.input() as {
      credentials: Record<string, string>
      params: { url: string }
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (credentials.apiKey) headers.authorization = `ApiKey ${credentials.apiKey}`
    else if (credentials.username)
      headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    const put = async (path: string, body: string) => {
      const response = await fetch(`${params.url}/${path}`, { method: 'PUT', headers, body })
      expect(response.status, await response.text()).toBeLessThan(300)
    }
    // Only seq is indexed: the other fields live in _source as sent (1e400 is no double).
    await put(name, '{"mappings":{"dynamic":false,"properties":{"seq":{"type":"long"}}}}')
    const raw =
      '{"seq":9007199254740993,"big":9007199254740993,"huge":1e400,"n":{"x":12345678901234567890},"s":"12345678901234567890"}'
    await put(`${name}/_doc/b1?refresh=true`, raw)
    await put(`${name}/_doc/a1?refresh=true`, '{"seq":1,"small":1.5}')
    await put(`${name}/_doc/c1?refresh=true`, '{"seq":9007199254740995}')
    const items = await collect(connection, { index: name, sortField: 'seq' })
    expect(items.map((item) => item.context.id)).toEqual(['a1', 'b1', 'c1'])
    const [plain, exact] = items.map((item) => item.data as DocumentData)
    expect(plain!.rawJson).toBeUndefined()
    expect(plain!.content).toEqual({ seq: 1, small: 1.5 })
    expect(exact!.rawJson).toEqual({
      seq: '9007199254740993',
      big: '9007199254740993',
      huge: '1e400',
      n: '{"x":12345678901234567890}',
    })
    expect(exact!.content).toEqual(JSON.parse(raw))
    // A cluster returns the long sort value as written; JSON.parse would make it ...992.
    if (realUrl) expect(items[1]!.context.key).toEqual({ number: '9007199254740993' })
    const next = await collect(connection, { index: name, sortField: 'seq' }, items[1]!.context)
    expect(next.map((item) => item.context.id)).toEqual(['c1'])
    // A context's exact sort value goes out as that number: after ...993 comes ...995.
    const resumed = await collect(
      connection,
      { index: name, sortField: 'seq' },
      { id: 'b1', key: { number: '9007199254740993' } },
    )
    expect(resumed.map((item) => item.context.id)).toEqual(['c1'])
    const error = await errorOf(
      collect(connection, { index: name, sortField: 'seq' }, { id: 'b1', key: { number: '9x' } }),
    )
    expect(error.kind).toBe('config')
    expect(error.message).toMatch(
      /resume context key: \{"number": \.\.\.\} must hold the text of a JSON number/,
    )
  })

  it('create mode reports version conflicts per item; a mapping conflict is a data failure', async () => {
    const stream = { index: index('create'), action: 'create', refresh: 'true' }
    const batch = [
      { kind: 'document' as const, id: 'x', content: { n: 1 } },
      { kind: 'document' as const, id: 'y', content: { n: 2 } },
    ]
    expect(await connection.write(stream, batch, { signal: signal() })).toEqual({
      written: 2,
      failed: [],
    })
    const again = await connection.write(
      stream,
      [...batch, { kind: 'document', id: 'z', content: { n: { nested: true } } }],
      { signal: signal() },
    )
    expect(again.written).toBe(0)
    expect(again.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
      [0, 'data', 'version_conflict_engine_exception'],
      [1, 'data', 'version_conflict_engine_exception'],
      [2, 'data', expect.stringMatching(/parsing_exception/)],
    ])
  })

  it('classifies errors: missing index, bad query, 429 with Retry-After, 503', async () => {
    const missing = await errorOf(collect(connection, { index: index('nope') }))
    expect(missing.kind).toBe('not_found')
    expect(missing.message).toMatch(/index_not_found_exception/)
    await seed('errors', 3)
    const bad = await errorOf(
      collect(connection, { index: index('errors'), query: { no_such_query: {} } }),
    )
    expect(bad.kind).toBe('config')
    if (realUrl) return
    const server = target.emulator!.server
    server.failNext({ status: 429, path: 'point_in_time', retryAfterSeconds: 3 })
    const limited = await errorOf(collect(connection, { index: index('errors') }))
    expect(limited.kind).toBe('rate_limited')
    expect(limited.retryAfterMs).toBe(3000)
    server.failNext({ status: 503, path: '_search' })
    const down = await errorOf(collect(connection, { index: index('errors') }))
    expect(down.kind).toBe('transient')
    server.failShardsNext()
    const partial = await errorOf(collect(connection, { index: index('errors') }))
    expect(partial.kind).toBe('transient')
    expect(partial.message).toMatch(/1 of 2 shards failed/)
  })

  it('prepare creates the index from the declared mapping, once', async () => {
    const stream = {
      index: index('prepared'),
      mappings: { properties: { n: { type: 'integer' }, at: { type: 'date' } } },
    }
    const dry = await connection.prepare(stream, { dryRun: true })
    expect(dry.existed).toBe(false)
    expect((await target.client.indices.exists({ index: index('prepared') })).body).toBe(false)
    const made = await connection.prepare(stream)
    expect(made.existed).toBe(false)
    expect(made.actions[0]).toMatch(/^PUT \//)
    const { body: mapping } = await target.client.indices.getMapping({ index: index('prepared') })
    expect((mapping as any)[index('prepared')].mappings.properties.n).toMatchObject({
      type: 'integer',
    })
    expect(await connection.prepare(stream)).toEqual({ existed: true, actions: [] })
  })

  it('describeStream gives the mapping as portable column types', async () => {
    await target.client.indices.create({
      index: index('described'),
      body: {
        settings: { 'index.knn': true },
        mappings: {
          properties: {
            n: { type: 'long' },
            name: { type: 'keyword' },
            at: { type: 'date_nanos' },
            v: { type: 'knn_vector', dimension: 2 },
            meta: { properties: { a: { type: 'integer' } } },
          },
        },
      },
    })
    const schema = await connection.describeStream({ index: index('described') })
    expect(schema.system).toBe('opensearch')
    expect(Object.fromEntries(schema.columns.map((c) => [c.name, c.type]))).toEqual({
      n: { type: 'integer', bits: 64 },
      name: { type: 'text' },
      at: { type: 'timestamp', withTimeZone: true, precision: 9 },
      v: { type: 'array', of: { type: 'float', bits: 32 } },
      meta: { type: 'json' },
    })
    const missing = await errorOf(connection.describeStream({ index: index('none') }))
    expect(missing.kind).toBe('not_found')
  })

  it('discover lists indices with their mapped fields and an embedding stream for vectors', async () => {
    await target.client.indices.create({
      index: index('disc'),
      body: {
        settings: { 'index.knn': true },
        mappings: {
          properties: { title: { type: 'text' }, v: { type: 'knn_vector', dimension: 2 } },
        },
      },
    })
    const streams = await connection.discover()
    const mine = streams.filter((s) => s.name.startsWith(index('disc')))
    expect(mine.map((s) => s.data)).toEqual(['document', 'embedding'])
    expect(mine[0]!.fields).toEqual(
      expect.arrayContaining([
        { name: 'title', type: 'text' },
        { name: 'v', type: 'knn_vector' },
      ]),
    )
    expect(mine[1]!.stream).toEqual({ index: index('disc'), data: 'embedding', vectorField: 'v' })
    expect(() => opensearchProvider.validateStream(mine[1]!.stream)).not.toThrow()
  })
})
