import { describe, expect, it } from 'vitest'
import { ProviderError } from './errors.js'
import {
  MAX_DISCOVERED_SEARCH_STREAMS,
  type SearchMappings,
  searchColumnTypeOf,
  searchIndexSchema,
  searchMappingColumns,
  searchMappingFields,
  searchStreamsOf,
} from './search-mapping.js'

const properties = {
  title: { type: 'text' },
  count: { type: 'long' },
  author: { properties: { name: { type: 'keyword' }, born: { type: 'date' } } },
  tags: { type: 'nested', properties: { label: { type: 'keyword' } } },
  meta: { type: 'flattened' },
  empty: {},
  vec: { type: 'dense_vector', dims: 3 },
}

describe('searchMappingFields', () => {
  it('lists leaf fields as dotted paths, entering object and nested fields only', () => {
    expect(searchMappingFields(properties)).toEqual([
      { name: 'title', type: 'text' },
      { name: 'count', type: 'long' },
      { name: 'author.name', type: 'keyword' },
      { name: 'author.born', type: 'date' },
      { name: 'tags.label', type: 'keyword' },
      { name: 'meta', type: 'flattened' },
      { name: 'empty', type: 'object' },
      { name: 'vec', type: 'dense_vector' },
    ])
  })

  it('keeps a field with sub-fields whose type is not object or nested as one field', () => {
    expect(
      searchMappingFields({ name: { type: 'text', properties: { raw: { type: 'keyword' } } } }),
    ).toEqual([{ name: 'name', type: 'text' }])
    expect(searchMappingFields(undefined)).toEqual([])
  })
})

describe('searchColumnTypeOf', () => {
  it('maps numeric, date, text, vector and object types', () => {
    expect(searchColumnTypeOf('long')).toEqual({ type: 'integer', bits: 64 })
    expect(searchColumnTypeOf('byte')).toEqual({ type: 'integer', bits: 8 })
    expect(searchColumnTypeOf('unsigned_long')).toEqual({
      type: 'integer',
      bits: 64,
      unsigned: true,
    })
    expect(searchColumnTypeOf('half_float')).toEqual({ type: 'float', bits: 32 })
    expect(searchColumnTypeOf('scaled_float')).toEqual({ type: 'float', bits: 64 })
    expect(searchColumnTypeOf('date')).toEqual({
      type: 'timestamp',
      withTimeZone: true,
      precision: 3,
    })
    expect(searchColumnTypeOf('date_nanos')).toEqual({
      type: 'timestamp',
      withTimeZone: true,
      precision: 9,
    })
    expect(searchColumnTypeOf('ip')).toEqual({ type: 'text' })
    for (const vector of ['dense_vector', 'knn_vector'])
      expect(searchColumnTypeOf(vector)).toEqual({ type: 'array', of: { type: 'float', bits: 32 } })
    expect(searchColumnTypeOf('nested')).toEqual({ type: 'json' })
    expect(searchColumnTypeOf('geo_point')).toEqual({ type: 'other' })
  })
})

describe('searchMappingColumns', () => {
  it('gives top-level fields as nullable columns, objects as json', () => {
    expect(searchMappingColumns(properties).map((c) => [c.name, c.nativeType, c.type])).toEqual([
      ['title', 'text', { type: 'text' }],
      ['count', 'long', { type: 'integer', bits: 64 }],
      ['author', 'object', { type: 'json' }],
      ['tags', 'nested', { type: 'json' }],
      ['meta', 'flattened', { type: 'json' }],
      ['empty', 'object', { type: 'json' }],
      ['vec', 'dense_vector', { type: 'array', of: { type: 'float', bits: 32 } }],
    ])
    expect(searchMappingColumns(properties).every((c) => c.nullable)).toBe(true)
  })
})

describe('searchStreamsOf', () => {
  const mappings: SearchMappings = {
    'docs-b': { mappings: { properties: { text: { type: 'text' } } } },
    'docs-a': {
      mappings: { properties: { text: { type: 'text' }, emb: { type: 'knn_vector' } } },
    },
    '.ds-logs-2024.01.01-000001': {
      mappings: { properties: { '@timestamp': { type: 'date' } } },
    },
    '.internal': { mappings: { properties: { x: { type: 'keyword' } } } },
  }

  it('lists data streams first, then indices by name, skipping dot indices', () => {
    const streams = searchStreamsOf(mappings, ['logs'], 'dense_vector')
    expect(streams.map((s) => [s.name, s.type, s.data])).toEqual([
      ['logs', 'data_stream', 'document'],
      ['docs-a', 'index', 'document'],
      ['docs-b', 'index', 'document'],
    ])
    expect(streams[0]!.stream).toEqual({ index: 'logs' })
  })

  it('adds an embedding stream for the first field of the vector type given', () => {
    const streams = searchStreamsOf(mappings, [], 'knn_vector')
    expect(streams.map((s) => s.name)).toEqual(['docs-a', 'docs-a (embeddings: emb)', 'docs-b'])
    expect(streams[1]).toMatchObject({
      type: 'index',
      data: 'embedding',
      stream: { index: 'docs-a', data: 'embedding', vectorField: 'emb' },
      description: 'The emb knn_vector as embedding values, the other fields as metadata',
    })
  })

  it('gives a data stream without a backing index no fields', () => {
    expect(searchStreamsOf({}, ['orphan'], 'dense_vector')[0]!.fields).toEqual([])
  })

  it('stops at MAX_DISCOVERED_SEARCH_STREAMS', () => {
    const many: SearchMappings = {}
    for (let i = 0; i < MAX_DISCOVERED_SEARCH_STREAMS + 5; i++)
      many[`i${String(i).padStart(5, '0')}`] = { mappings: { properties: {} } }
    expect(searchStreamsOf(many, [], 'dense_vector')).toHaveLength(MAX_DISCOVERED_SEARCH_STREAMS)
  })
})

describe('searchIndexSchema', () => {
  it('unions the top-level fields of every matching index, the first by name winning', () => {
    const schema = searchIndexSchema(
      {
        b: { mappings: { properties: { x: { type: 'keyword' }, y: { type: 'long' } } } },
        a: { mappings: { properties: { x: { type: 'text' } } } },
      },
      'a,b',
      'opensearch',
    )
    expect(schema.system).toBe('opensearch')
    expect(schema.primaryKey).toEqual([])
    expect(schema.columns.map((c) => [c.name, c.nativeType])).toEqual([
      ['x', 'text'],
      ['y', 'long'],
    ])
  })

  it('is a not_found error naming the index when nothing matches', () => {
    let error: unknown
    try {
      searchIndexSchema({}, 'missing-*', 'elasticsearch')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ProviderError)
    expect(error).toMatchObject({ kind: 'not_found', operation: 'describe' })
    expect((error as Error).message).toContain('missing-* matches no index')
  })
})
