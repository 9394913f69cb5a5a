import { Client as EsClient, errors as esErrors } from '@elastic/elasticsearch'
import { Client as OsClient } from '@opensearch-project/opensearch'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findDuplicateKey } from './duplicate-keys.js'
import { type SearchEmulator, startSearchEmulator } from './server.js'

describe('search emulator with the Elasticsearch 8 client', () => {
  let emulator: SearchEmulator
  let client: EsClient
  beforeAll(async () => {
    emulator = await startSearchEmulator({ flavor: 'elasticsearch', users: { elastic: 'pw' } })
    client = new EsClient({
      node: emulator.url,
      auth: { username: 'elastic', password: 'pw' },
      maxRetries: 0,
    })
  })
  afterAll(async () => {
    await client?.close()
    await emulator?.close()
  })

  it('passes the product check and reports its version', async () => {
    const info = await client.info()
    expect(info.version.number).toBe('8.15.0')
    const health = await client.cluster.health()
    expect(health.status).toBe('green')
  })

  it('refuses bad credentials with a 401 security_exception', async () => {
    const bad = new EsClient({
      node: emulator.url,
      auth: { username: 'elastic', password: 'nope' },
      maxRetries: 0,
    })
    const error = await bad.info().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(esErrors.ResponseError)
    expect((error as esErrors.ResponseError).statusCode).toBe(401)
    expect((error as esErrors.ResponseError).body.error.type).toBe('security_exception')
    await bad.close()
  })

  it('creates an index with a mapping, bulk-indexes with per-item errors, and pages a PIT with search_after', async () => {
    await client.indices.create({
      index: 'docs',
      mappings: { properties: { n: { type: 'long' }, v: { type: 'dense_vector', dims: 2 } } },
    })
    const mapping = await client.indices.getMapping({ index: 'docs' })
    expect(mapping.docs!.mappings.properties!.n).toEqual({ type: 'long' })
    const operations = []
    for (let i = 0; i < 25; i++)
      operations.push({ index: { _index: 'docs', _id: `d${i}` } }, { n: i, v: [i, 1] })
    operations.push({ index: { _index: 'docs', _id: 'bad' } }, { n: 'not a number' })
    operations.push({ create: { _index: 'docs', _id: 'd0' } }, { n: 0 })
    const bulk = await client.bulk({ operations, refresh: 'wait_for' })
    expect(bulk.errors).toBe(true)
    expect(bulk.items[25]!.index!.status).toBe(400)
    expect(bulk.items[25]!.index!.error!.type).toBe('document_parsing_exception')
    expect(bulk.items[26]!.create!.status).toBe(409)
    expect((await client.count({ index: 'docs' })).count).toBe(25)

    const pit = await client.openPointInTime({ index: 'docs', keep_alive: '1m' })
    // A write after the PIT opened is not in it.
    await client.index({ index: 'docs', id: 'late', document: { n: 99 } })
    const seen: number[] = []
    let after: any[] | undefined
    for (;;) {
      const page = await client.search<{ n: number }>({
        pit: { id: pit.id, keep_alive: '1m' },
        size: 7,
        sort: [{ n: 'asc' }],
        ...(after ? { search_after: after } : {}),
      })
      if (page.hits.hits.length === 0) break
      for (const hit of page.hits.hits) seen.push(hit._source!.n)
      after = page.hits.hits.at(-1)!.sort
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i))
    const sliced = await client.search({
      pit: { id: pit.id },
      size: 100,
      slice: { id: '0', max: 2 },
    })
    const other = await client.search({
      pit: { id: pit.id },
      size: 100,
      slice: { id: '1', max: 2 },
    })
    expect(sliced.hits.hits.length + other.hits.hits.length).toBe(25)
    await client.closePointInTime({ id: pit.id })
    const gone = await client.search({ pit: { id: pit.id } }).catch((e: unknown) => e)
    expect((gone as esErrors.ResponseError).statusCode).toBe(404)
  })

  it('answers 404 for a missing index, 400 for an unknown query, 429 with Retry-After', async () => {
    const missing = await client.search({ index: 'nope' }).catch((e: unknown) => e)
    expect((missing as esErrors.ResponseError).body.error.type).toBe('index_not_found_exception')
    const badQuery = await client
      .search({ index: 'docs', query: { nope: {} } as any })
      .catch((e: unknown) => e)
    expect((badQuery as esErrors.ResponseError).statusCode).toBe(400)
    emulator.server.failNext({ status: 429, retryAfterSeconds: 2 })
    const limited = await client.info().catch((e: unknown) => e)
    expect((limited as esErrors.ResponseError).statusCode).toBe(429)
    expect((limited as esErrors.ResponseError).headers?.['retry-after']).toBe('2')
  })
})

describe('search emulator with the OpenSearch 3 client', () => {
  let emulator: SearchEmulator
  let client: OsClient
  beforeAll(async () => {
    emulator = await startSearchEmulator({ flavor: 'opensearch', users: { admin: 'pw' } })
    client = new OsClient({
      node: emulator.url,
      auth: { username: 'admin', password: 'pw' },
      maxRetries: 0,
    })
  })
  afterAll(async () => {
    await client?.close()
    await emulator?.close()
  })

  it('reports the opensearch distribution', async () => {
    const { body } = await client.info()
    expect(body.version.distribution).toBe('opensearch')
  })

  it('pages a point in time created with _search/point_in_time', async () => {
    await client.indices.create({
      index: 'vec',
      body: {
        mappings: {
          properties: { n: { type: 'integer' }, v: { type: 'knn_vector', dimension: 2 } },
        },
      },
    })
    const lines: unknown[] = []
    for (let i = 0; i < 10; i++)
      lines.push({ index: { _index: 'vec', _id: String(i) } }, { n: i, v: [i, 0] })
    lines.push({ index: { _index: 'vec', _id: 'short' } }, { n: 1, v: [1] })
    const { body: bulk } = await client.bulk({ body: lines as any })
    expect(bulk.errors).toBe(true)
    expect(bulk.items[10]!.index!.error!.type).toBe('mapper_parsing_exception')
    const { body: pit } = await client.createPit({ index: ['vec'], keep_alive: '1m' })
    const { body: page } = await client.search({
      body: {
        pit: { id: pit.pit_id as any, keep_alive: '1m' },
        size: 100,
        sort: [{ _id: 'asc' }],
      } as any,
    })
    expect(page.hits.hits.map((h: any) => h._id)).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ])
    const { body: deleted } = await client.deletePit({ body: { pit_id: [pit.pit_id!] } })
    expect(deleted.pits![0]!.successful).toBe(true)
  })

  it('answers the security plugin 401', async () => {
    const bad = new OsClient({
      node: emulator.url,
      auth: { username: 'admin', password: 'no' },
      maxRetries: 0,
    })
    const error = (await bad.info().catch((e: unknown) => e)) as { statusCode?: number }
    expect(error.statusCode).toBe(401)
    await bad.close()
  })
})

describe('search emulator _source', () => {
  it('returns each _source exactly as it was indexed (digits, key order, escapes)', async () => {
    const emulator = await startSearchEmulator({ flavor: 'elasticsearch' })
    try {
      const source = '{"big":12345678901234567890123,"z":1,"a":"\\u00e9\\"","f":1.50}'
      const bulk = await fetch(`${emulator.url}/_bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: `{"index":{"_index":"raw","_id":"1"}}\n${source}\n`,
      })
      expect(bulk.status).toBe(200)
      const text = await (await fetch(`${emulator.url}/raw/_search`)).text()
      expect(text).toContain(`"_source":${source}`)
      expect(JSON.parse(text).hits.hits[0]._source.f).toBe(1.5)
    } finally {
      await emulator.close()
    }
  })
})

describe('search emulator strict duplicate detection', () => {
  const where = (column: number) =>
    `\n at [Source: REDACTED (\`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION\` disabled); line: 1, column: ${column}]`

  it('finds the first repeated key at any depth, where Jackson reports it (bytes of UTF-8)', () => {
    const text = '{"é":1,"o":{"x":[1,{"k":2}],"x":3}}'
    expect(findDuplicateKey(text, JSON.parse(text))).toEqual({
      key: 'x',
      at: { line: 1, column: 33 },
      token: { line: 1, column: 28 },
    })
    // Equal values are repeated keys too; escapes name the same key.
    const equal = '{"a":[],"\\u0061":[]}'
    expect(findDuplicateKey(equal, JSON.parse(equal))?.key).toBe('a')
    // Colons inside strings are not members; keys may repeat in different objects.
    const clean = '{"t":"12:00:00","u":{"a":1},"v":{"a":"x:y"},"w":[{"a":1},{"a":2}]}'
    expect(findDuplicateKey(clean, JSON.parse(clean))).toBeUndefined()
  })

  async function bulk(url: string, body: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${url}/_bulk?refresh=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', ...headers },
      body,
    })
    return { status: response.status, body: (await response.json()) as any }
  }

  it('Elasticsearch 8: a document that repeats a key fails alone with document_parsing_exception "Duplicate field"', async () => {
    const emulator = await startSearchEmulator({ flavor: 'elasticsearch' })
    try {
      const result = await bulk(
        emulator.url,
        [
          '{"index":{"_index":"dup","_id":"1"}}',
          '{"a":1,"a":2}',
          '{"index":{"_index":"dup","_id":"2"}}',
          '{"o":{"x":1,"x":1}}',
          '{"index":{"_index":"dup","_id":"3"}}',
          '{"t":"12:00:00","a":1}',
          '',
        ].join('\n'),
      )
      expect(result.status).toBe(200)
      expect(result.body.errors).toBe(true)
      const [first, second, third] = result.body.items.map((item: any) => item.index)
      expect(first.status).toBe(400)
      expect(first.error.type).toBe('document_parsing_exception')
      expect(first.error.reason).toBe(
        `[1:6] failed to parse: [1:11] Duplicate field 'a'${where(11)}`,
      )
      expect(first.error.caused_by).toEqual({
        type: 'x_content_parse_exception',
        reason: `[1:11] Duplicate field 'a'${where(11)}`,
        caused_by: { type: 'json_parse_exception', reason: `Duplicate field 'a'${where(11)}` },
      })
      expect(second.status).toBe(400)
      expect(second.error.caused_by.caused_by.reason).toBe(`Duplicate field 'x'${where(16)}`)
      expect(third.status).toBe(201)
      // The index was created; only the clean document is in it.
      const count = (await (await fetch(`${emulator.url}/dup/_count`)).json()) as { count: number }
      expect(count.count).toBe(1)

      // The single-document API answers 400 with the same error, caused_by and all.
      const put = await fetch(`${emulator.url}/dup/_doc/4`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{"b":true,"b":false}',
      })
      expect(put.status).toBe(400)
      const error = (await put.json()) as any
      expect(error.error.root_cause).toEqual([
        {
          type: 'document_parsing_exception',
          reason: `[1:6] failed to parse: [1:14] Duplicate field 'b'${where(14)}`,
        },
      ])
      expect(error.error.caused_by.type).toBe('x_content_parse_exception')

      // A request body that repeats a key fails the request.
      const search = await fetch(`${emulator.url}/dup/_search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"size":1,"size":2}',
      })
      expect(search.status).toBe(400)
      expect(((await search.json()) as any).error).toMatchObject({
        type: 'x_content_parse_exception',
        reason: `[1:17] Duplicate field 'size'${where(17)}`,
        caused_by: { type: 'json_parse_exception' },
      })
      const action = await bulk(emulator.url, '{"index":{"_index":"dup","_index":"x"}}\n{}\n')
      expect(action.status).toBe(400)
      expect(action.body.error.type).toBe('x_content_parse_exception')
    } finally {
      await emulator.close()
    }
  })

  it('OpenSearch: mapper_parsing_exception "failed to parse" caused by json_parse_exception', async () => {
    const emulator = await startSearchEmulator({ flavor: 'opensearch' })
    try {
      const result = await bulk(
        emulator.url,
        '{"create":{"_index":"dup","_id":"1"}}\n{"a":1,"a":2}\n{"create":{"_index":"dup","_id":"2"}}\n{"a":1}\n',
      )
      const [first, second] = result.body.items.map((item: any) => item.create)
      expect(first.status).toBe(400)
      expect(first.error).toMatchObject({
        type: 'mapper_parsing_exception',
        reason: 'failed to parse',
        caused_by: { type: 'json_parse_exception', reason: `Duplicate field 'a'${where(11)}` },
      })
      expect(second.status).toBe(201)
      const search = await fetch(`${emulator.url}/dup/_search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":{"match_all":{}},"query":{"match_all":{}}}',
      })
      expect(search.status).toBe(400)
      expect(((await search.json()) as any).error.type).toBe('json_parse_exception')
    } finally {
      await emulator.close()
    }
  })
})
