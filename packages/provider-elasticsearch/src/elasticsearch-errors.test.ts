import { errors } from '@elastic/elasticsearch'
import { describe, expect, it } from 'vitest'
import { classifyElasticsearchError, errorDetail } from './elasticsearch-errors.js'
import { chunkEntries, mappingOf, toSource } from './elasticsearch-sink.js'

/** A ResponseError as the client builds it from a response. */
function responseError(statusCode: number, body: unknown, headers: Record<string, string> = {}) {
  return new errors.ResponseError({
    body,
    statusCode,
    headers,
    warnings: null,
    meta: {} as never,
  })
}

const body = (type: string, reason: string, status: number) => ({
  error: { root_cause: [{ type, reason }], type, reason },
  status,
})

describe('classifyElasticsearchError', () => {
  it.each([
    [401, 'security_exception', 'auth'],
    [403, 'security_exception', 'auth'],
    [404, 'index_not_found_exception', 'not_found'],
    [400, 'parsing_exception', 'config'],
    [400, 'x_content_parse_exception', 'config'],
    [400, 'document_parsing_exception', 'data'],
    [409, 'version_conflict_engine_exception', 'data'],
    [429, 'es_rejected_execution_exception', 'rate_limited'],
    [503, 'unavailable_shards_exception', 'transient'],
    [500, 'search_phase_execution_exception', 'transient'],
  ] as const)('%i %s is %s', (status, type, kind) => {
    const error = classifyElasticsearchError(responseError(status, body(type, 'why', status)))
    expect(error?.kind).toBe(kind)
    expect(error?.code).toBe(type)
    expect(error?.message).toContain(type)
  })

  it('waits the Retry-After of a 429, else one second', () => {
    const limited = classifyElasticsearchError(
      responseError(429, body('es_rejected_execution_exception', 'x', 429), { 'retry-after': '7' }),
    )
    expect(limited?.retryAfterMs).toBe(7000)
    const bare = classifyElasticsearchError(responseError(429, 'Too Many Requests'))
    expect(bare?.retryAfterMs).toBe(1000)
  })

  it('names the root cause of an "all shards failed"', () => {
    const error = classifyElasticsearchError(
      responseError(400, {
        error: {
          root_cause: [{ type: 'query_shard_exception', reason: 'failed to create query: bad' }],
          type: 'search_phase_execution_exception',
          reason: 'all shards failed',
        },
        status: 400,
      }),
    )
    expect(error?.kind).toBe('config')
    expect(error?.message).toMatch(/all shards failed: failed to create query: bad/)
  })

  it('classifies client errors and strips user info from a URL in their message', () => {
    const connection = new errors.ConnectionError(
      'connect ECONNREFUSED http://user:hunter2@10.0.0.1:9200',
    )
    const classified = classifyElasticsearchError(connection)
    expect(classified?.kind).toBe('transient')
    expect(classified?.message).not.toContain('hunter2')
    expect(classifyElasticsearchError(new errors.TimeoutError('Request timed out'))?.kind).toBe(
      'transient',
    )
    expect(
      classifyElasticsearchError(new errors.ProductNotSupportedError('Elasticsearch', {} as never))
        ?.kind,
    ).toBe('config')
    expect(classifyElasticsearchError(new Error('something else'))).toBeUndefined()
    expect(classifyElasticsearchError('text')).toBeUndefined()
  })

  it('reads a plain text body', () => {
    expect(errorDetail('Unauthorized')).toEqual({ type: undefined, reason: 'Unauthorized' })
  })
})

describe('sink helpers', () => {
  it('closes bulk chunks by bytes and by items; an oversized entry goes alone', () => {
    const sizes = [4, 4, 4, 20, 1, 1, 1, 1]
    const chunks = chunkEntries(
      sizes.map((bytes, i) => ({ bytes, i })),
      10,
      3,
    )
    expect(chunks.map((c) => c.map((e) => e.i))).toEqual([[0, 1], [2], [3], [4, 5, 6], [7]])
  })

  it('takes _id from data.id or idField, drops content._id, refuses other kinds', () => {
    const stream = { index: 'i', vectorField: 'embedding' } as never
    expect(toSource({ kind: 'document', id: 'a', content: { _id: 'x', n: 1 } }, stream)).toEqual({
      id: 'a',
      source: { n: 1 },
    })
    expect(
      toSource({ kind: 'document', id: 'a', content: { key: 7 } }, {
        index: 'i',
        idField: 'key',
      } as never),
    ).toEqual({ id: '7', source: { key: 7 } })
    expect(() => toSource({ kind: 'record', values: {} }, stream)).toThrow(/cannot be written/)
    expect(() => toSource({ kind: 'document', id: 'é'.repeat(300), content: {} }, stream)).toThrow(
      /512/,
    )
    expect(
      toSource(
        { kind: 'embedding', id: 'v', values: new Float32Array([0.5, 1]), metadata: { a: 1 } },
        stream,
      ),
    ).toEqual({ id: 'v', source: { a: 1, embedding: [0.5, 1] } })
  })

  it('checks exact JSON text (rawJson) of the fields it sends: a repeated key is refused, naming the field', () => {
    const stream = { index: 'i' } as never
    const raw = '{"n":12345678901234567890123,"x":1e400}'
    expect(
      toSource(
        { kind: 'document', id: 'a', content: { j: {}, _id: 'x' }, rawJson: { j: raw } },
        stream,
      ),
    ).toEqual({ id: 'a', source: { j: {} } })
    // A field left out of the source (_id) is not sent, so its text is not checked.
    expect(() =>
      toSource(
        { kind: 'document', id: 'a', content: { _id: 'x' }, rawJson: { _id: '{"a":1,"a":1}' } },
        stream,
      ),
    ).not.toThrow()
    for (const [text, reason] of [
      [
        '{"b":1,"a":2,"b":3}',
        /document "a": field "j": its JSON text repeats the key "b" in one object/,
      ],
      ['[{"k":[],"k":[]}]', /document "a": field "j": its JSON text repeats a key in one object/],
      ['{"a":', /document "a": field "j": its JSON text is not valid JSON/],
    ] as const) {
      let error: unknown
      try {
        toSource({ kind: 'document', id: 'a', content: { j: null }, rawJson: { j: text } }, stream)
      } catch (e) {
        error = e
      }
      expect((error as { kind?: string })?.kind, text).toBe('data')
      expect((error as Error).message, text).toMatch(reason)
    }
  })

  it('maps portable types to mapping types without loss', () => {
    expect(mappingOf({ type: 'integer', bits: 64, unsigned: true })).toEqual({
      type: 'unsigned_long',
    })
    expect(mappingOf({ type: 'integer', bits: 32, unsigned: true })).toEqual({ type: 'long' })
    expect(mappingOf({ type: 'decimal', precision: 65, scale: 30 })).toEqual({ type: 'keyword' })
    expect(mappingOf({ type: 'timestamp', withTimeZone: true, precision: 6 })).toEqual({
      type: 'date_nanos',
    })
    expect(mappingOf({ type: 'json' })).toEqual({ type: 'object', enabled: false })
    expect(mappingOf({ type: 'other' })).toBeUndefined()
  })
})
