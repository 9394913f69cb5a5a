import { createHash } from 'node:crypto'
import {
  type Data,
  type DocumentData,
  type EmbeddingData,
  type MessageData,
  type RecordData,
  tagged,
} from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { createMemoryWorld, memoryNode } from '../__fixtures__/memory-provider.js'
import { runPipeline } from '../__fixtures__/run.js'
import type { Pipeline } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import { converterFor, isConversionFailure } from './convert.js'
import { validatePipeline } from './validate.js'

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

function convertOne(
  from: 'record' | 'document',
  to: 'message' | 'record',
  item: Data,
  setting?: Parameters<typeof converterFor>[2],
  context?: Parameters<typeof converterFor>[3],
) {
  const converter = converterFor(from, to, setting, context)
  if (!converter || converter.many) throw new Error('expected a one-to-one converter')
  return converter.convert(item, { index: 0 })
}

describe('record -> message', () => {
  const row: RecordData = {
    kind: 'record',
    values: {
      tenant: 'a/b',
      id: 9007199254740993n,
      price: tagged('decimal', '12.500'),
      at: tagged('timestamptz', '2024-01-02T03:04:05.123456+00:00'),
      doc: tagged('json', '{"k":[1,2]}'),
      raw: new Uint8Array([1, 2, 255]),
      none: null,
    },
  }

  it('writes the row as JSON, ids from the source primary key, with the documented headers', () => {
    const message = convertOne('record', 'message', row, undefined, {
      sourceNodeId: 'pg',
      primaryKey: ['id'],
    }) as MessageData
    expect(message.kind).toBe('message')
    expect(message.id).toBe('9007199254740993')
    expect(JSON.parse(decode(message.payload))).toEqual({
      tenant: 'a/b',
      id: '9007199254740993',
      price: '12.500',
      at: '2024-01-02T03:04:05.123456+00:00',
      doc: { k: [1, 2] },
      raw: 'AQL/',
      none: null,
    })
    expect(message.headers).toEqual({
      'content-type': 'application/json',
      'nvisy-source-node': 'pg',
    })
  })

  it('embeds JSON column text verbatim (duplicate keys, numbers beyond doubles) in messages and JSONL blobs', () => {
    const exact: RecordData = {
      kind: 'record',
      values: {
        id: 1,
        j: tagged('json', '{"b":1,"a":2,"b":3,"n":12345678901234567890123,"x":1e400}'),
      },
    }
    const expected = '{"id":1,"j":{"b":1,"a":2,"b":3,"n":12345678901234567890123,"x":1e400}}'
    const message = convertOne('record', 'message', exact, { key: ['id'] }) as MessageData
    expect(decode(message.payload)).toBe(expected)
    const converter = converterFor('record', 'blob', 'jsonl')!
    const blob = (converter.many ? undefined : converter.convert(exact, { index: 0 })) as {
      body: Uint8Array
    }
    expect(decode(blob.body)).toBe(`${expected}\n`)
  })

  it('joins several key columns URI-encoded with /, a declared key winning over the primary key', () => {
    const message = convertOne(
      'record',
      'message',
      row,
      { key: ['tenant', 'id'] },
      { primaryKey: ['id'] },
    ) as MessageData
    expect(message.id).toBe('a%2Fb/9007199254740993')
  })

  it('without a key, the id is the SHA-256 of the canonical JSON row: stable across runs', () => {
    const a = convertOne('record', 'message', {
      kind: 'record',
      values: { b: 1, a: 'x' },
    }) as MessageData
    const b = convertOne('record', 'message', {
      kind: 'record',
      values: { a: 'x', b: 1 },
    }) as MessageData
    const expected = createHash('sha256').update('{"a":"x","b":1}').digest('hex')
    expect(a.id).toBe(`sha256:${expected}`)
    expect(b.id).toBe(a.id)
  })

  it('refuses a row whose key column is null, naming the column', () => {
    const result = convertOne(
      'record',
      'message',
      { kind: 'record', values: { id: null } },
      { key: ['id'] },
    )
    expect(isConversionFailure(result)).toBe(true)
    if (isConversionFailure(result)) {
      expect(result.error.kind).toBe('data')
      expect(result.error.message).toContain('key column "id"')
    }
  })
})

describe('exact JSON text in documents (rawJson)', () => {
  const text = '{"b":1,"a":2,"b":3,"n":12345678901234567890123,"x":1e400, "d":2.50}'
  const row: RecordData = {
    kind: 'record',
    values: { id: 1, j: tagged('json', text), s: tagged('json', '"just a string"'), t: 'x,y' },
  }
  const one = (
    from: 'record' | 'document',
    to: 'document' | 'blob' | 'message',
    item: Data,
    setting?: 'jsonl' | 'csv',
  ) => {
    const converter = converterFor(from, to, setting)
    if (!converter || converter.many) throw new Error('expected a one-to-one converter')
    return converter.convert(item, { index: 0 })
  }

  it('record -> document keeps the parsed content and each JSON column text verbatim', () => {
    const document = one('record', 'document', row) as DocumentData
    expect(document.content).toEqual({ id: 1, j: JSON.parse(text), s: 'just a string', t: 'x,y' })
    expect(document.rawJson).toEqual({ j: text, s: '"just a string"' })
    const plain = one('record', 'document', { kind: 'record', values: { id: 2 } }) as DocumentData
    expect(plain).toEqual({ kind: 'document', id: '2', content: { id: 2 } })
  })

  it('document -> JSONL blob and -> message write the raw fields verbatim, in field order', () => {
    const document = one('record', 'document', row) as DocumentData
    const expected = `{"id":1,"j":${text},"s":"just a string","t":"x,y"}`
    const blob = one('document', 'blob', document, 'jsonl') as { body: Uint8Array }
    expect(decode(blob.body)).toBe(`${expected}\n`)
    const message = one('document', 'message', document) as MessageData
    expect(decode(message.payload)).toBe(expected)
    // The same row straight to a blob or a message: the same text (one implementation).
    expect(decode((one('record', 'blob', row, 'jsonl') as { body: Uint8Array }).body)).toBe(
      `${expected}\n`,
    )
  })

  it('document -> CSV writes a JSON column as its exact text, a JSON string as the string', () => {
    const document = one('record', 'document', row) as DocumentData
    const blob = one('document', 'blob', document, 'csv') as { body: Uint8Array }
    expect(decode(blob.body)).toBe(
      `id,j,s,t\n1,"${text.replaceAll('"', '""')}",just a string,"x,y"\n`,
    )
  })

  it('message -> document keeps the text of numbers JSON.parse changes; -> message again is the payload', () => {
    const payload =
      '{"id":"m1","n":12345678901234567890123,"x":1e400,"d":0.1000000000000000055511151231257827,"o":{"k":[9007199254740993]},"ok":2.5}'
    const converter = converterFor('message', 'document')
    if (!converter || converter.many) throw new Error('expected a one-to-one converter')
    const message: MessageData = {
      kind: 'message',
      id: 'm1',
      payload: new TextEncoder().encode(payload),
    }
    const document = converter.convert(message, { index: 0 }) as DocumentData
    expect(document.content).toEqual(JSON.parse(payload))
    expect(document.rawJson).toEqual({
      n: '12345678901234567890123',
      x: '1e400',
      d: '0.1000000000000000055511151231257827',
      o: '{"k":[9007199254740993]}',
    })
    expect(decode((one('document', 'message', document) as MessageData).payload)).toBe(payload)
    // A payload without such numbers is read as before, with no rawJson.
    const plain = converter.convert(
      { ...message, payload: new TextEncoder().encode('{"a":"12345678901234567890","b":1.5}') },
      { index: 0 },
    )
    expect(plain).toEqual({
      kind: 'document',
      id: 'm1',
      content: { a: '12345678901234567890', b: 1.5 },
    })
  })
})

describe('document -> record with declared columns', () => {
  const columns = [
    { name: 'id', type: { type: 'integer', bits: 64 }, nullable: false, field: '$id' },
    { name: 'name', type: { type: 'text' } },
    { name: 'qty', type: { type: 'integer', bits: 32 } },
    { name: 'price', type: { type: 'decimal', precision: 10, scale: 2 } },
    { name: 'seen', type: { type: 'timestamp', withTimeZone: true } },
    { name: 'tags', type: { type: 'array', of: { type: 'text' } } },
    { name: 'meta', type: { type: 'json' } },
    { name: 'ok', type: { type: 'boolean' } },
  ] as const

  it('types each declared field for its column and drops undeclared fields', () => {
    const record = convertOne(
      'document',
      'record',
      {
        kind: 'document',
        id: '9007199254740993',
        content: {
          name: 'n',
          qty: 3,
          price: '19.99',
          seen: '2024-05-06T07:08:09.123456Z',
          tags: ['a', 'b'],
          meta: { x: 1 },
          ok: true,
          extra: 'dropped',
        },
      },
      { columns: columns as never },
    )
    expect(record).toEqual({
      kind: 'record',
      values: {
        id: 9007199254740993n,
        name: 'n',
        qty: 3,
        price: tagged('decimal', '19.99'),
        seen: tagged('timestamptz', '2024-05-06T07:08:09.123456Z'),
        tags: ['a', 'b'],
        meta: tagged('json', '{"x":1}'),
        ok: true,
      },
    })
  })

  it('refuses a document whose value does not fit, naming the column and rule', () => {
    const bad = (content: Record<string, unknown>) => {
      const result = convertOne(
        'document',
        'record',
        { kind: 'document', id: '1', content: content as never },
        { columns: columns as never },
      )
      if (!isConversionFailure(result)) throw new Error('expected a refusal')
      expect(result.error.kind).toBe('data')
      return result.error.message
    }
    expect(bad({ qty: 2 ** 40 })).toMatch(
      /column "qty" \(integer\) takes -2147483648\.\.2147483647/,
    )
    expect(bad({ qty: 1.5 })).toContain('column "qty" (integer) takes an integer')
    expect(bad({ ok: 'yes' })).toContain('column "ok" (boolean)')
    expect(bad({ price: 'ten' })).toContain('column "price" (decimal)')
  })

  it('refuses null in a column declared nullable: false', () => {
    const result = convertOne(
      'document',
      'record',
      { kind: 'document', id: 'x', content: {} },
      { columns: [{ name: 'name', type: { type: 'text' }, nullable: false }] },
    )
    expect(isConversionFailure(result) && result.error.message).toContain(
      'column "name" is declared nullable: false and field "name" is missing',
    )
  })

  it('is refused by validation without declared columns, and a key must be a declared column', () => {
    const world = createMemoryWorld()
    const registry = new MapProviderRegistry([world.provider])
    const pipeline = (convert?: unknown): Pipeline => ({
      id: 'p',
      nodes: [
        memoryNode('src', 'source', { name: 'in', kind: 'document' }),
        memoryNode('dst', 'sink', { name: 'out', kind: 'record' }, { convert: convert as never }),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })
    expect(validatePipeline(pipeline(), registry)).toEqual([
      expect.objectContaining({ path: '/edges/0', rule: 'columns' }),
    ])
    expect(
      validatePipeline(
        pipeline({ columns: [{ name: 'a', type: { type: 'text' } }], key: ['b'] }),
        registry,
      ),
    ).toEqual([expect.objectContaining({ path: '/nodes/1/convert/key/0', rule: 'column' })])
    expect(
      validatePipeline(pipeline({ columns: [{ name: 'a', type: { type: 'text' } }] }), registry),
    ).toEqual([])
    // The string forms stay valid.
    const blob = pipeline('csv')
    blob.nodes[1]!.stream = { name: 'out', kind: 'blob' }
    expect(validatePipeline(blob, registry)).toEqual([])
  })
})

describe('conversions in a pipeline', () => {
  it('record -> message: one pipeline, message ids from the described primary key', async () => {
    const world = createMemoryWorld('memory', { describe: true })
    world.sources.set('in', [
      { kind: 'record', values: { id: 1n, name: 'one' } },
      { kind: 'record', values: { id: 2n, name: 'two' } },
    ])
    world.schemas.set('in', {
      system: 'memory',
      columns: [
        { name: 'id', nativeType: 'bigint', type: { type: 'integer', bits: 64 }, nullable: false },
        { name: 'name', nativeType: 'text', type: { type: 'text' }, nullable: true },
      ],
      primaryKey: ['id'],
    })
    const { summary } = await runPipeline(world, {
      id: 'p',
      nodes: [
        memoryNode('pg', 'source', { name: 'in' }),
        memoryNode('js', 'sink', { name: 'subject', kind: 'message' }),
      ],
      edges: [{ from: 'pg', to: 'js' }],
    })
    expect(summary.status).toBe('completed')
    const out = world.sinks.get('subject')!
    expect([...out.keys()]).toEqual(['1', '2'])
    const message = out.get('2') as MessageData
    expect(JSON.parse(decode(message.payload))).toEqual({ id: 2, name: 'two' })
    expect(message.headers?.['nvisy-source-node']).toBe('pg')
  })

  it('document -> record: declared columns, a refused document fails the run by default', async () => {
    const world = createMemoryWorld()
    world.sources.set('docs', [
      { kind: 'document', id: 'a', content: { n: 1 } },
      { kind: 'document', id: 'b', content: { n: 'x' } },
    ])
    const pipeline: Pipeline = {
      id: 'p',
      nodes: [
        memoryNode('mongo', 'source', { name: 'docs', kind: 'document' }),
        memoryNode(
          'pg',
          'sink',
          { name: 'rows', kind: 'record' },
          {
            convert: {
              columns: [
                { name: 'id', type: { type: 'text' }, field: '$id' },
                { name: 'n', type: { type: 'integer', bits: 64 } },
              ],
            },
          },
        ),
      ],
      edges: [{ from: 'mongo', to: 'pg' }],
    }
    const { summary } = await runPipeline(world, pipeline)
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain('column "n" (integer)')
    expect(summary.error?.kind).toBe('data')
    expect(world.sinks.get('rows')?.has('b') ?? false).toBe(false)

    // With a budget the good document arrives, typed, and the run says partial.
    const partial = await runPipeline(world, { ...pipeline, options: { failureBudget: 1 } })
    expect(partial.summary.status).toBe('partial')
    expect(world.sinks.get('rows')?.get('a')).toEqual({
      kind: 'record',
      values: { id: 'a', n: 1n },
    })
  })
})

describe('record -> embedding', () => {
  const options = { embedding: { id: 'id', vector: 'embedding', dimension: 3 } }
  const embed = (values: RecordData['values'], setting: object = options) => {
    const converter = converterFor('record', 'embedding', setting as never)
    if (!converter || converter.many) throw new Error('expected a one-to-one converter')
    return converter.convert({ kind: 'record', values }, { index: 0 })
  }
  const refusal = (values: RecordData['values'], setting?: object) => {
    const result = embed(values, setting)
    if (!isConversionFailure(result)) throw new Error('expected a refusal')
    expect(result.error.kind).toBe('data')
    return result.error.message
  }

  it('takes the id and vector columns, and every other column as JSON metadata without nulls', () => {
    expect(
      embed({
        id: 9007199254740993n,
        embedding: [0.25, -1, 3e-7],
        title: 'Blue kettle',
        price: tagged('decimal', '19.90'),
        added: tagged('timestamptz', '2024-05-06T07:08:09.123456Z'),
        tags: ['kitchen', 'steel'],
        stock: 12,
        discontinued: null,
      }),
    ).toEqual({
      kind: 'embedding',
      id: '9007199254740993',
      values: [0.25, -1, 3e-7],
      metadata: {
        title: 'Blue kettle',
        price: '19.90',
        added: '2024-05-06T07:08:09.123456Z',
        tags: ['kitchen', 'steel'],
        stock: 12,
      },
    })
  })

  it("reads pgvector text ('[1,2,3]'), a JSON column's array and numeric[] elements", () => {
    const values = (vector: RecordData['values'][string]) =>
      (embed({ id: 'a', embedding: vector }) as EmbeddingData).values
    expect(values('[1,2.5,-3e-2]')).toEqual([1, 2.5, -0.03])
    expect(values(' [0, 0.5, 1] ')).toEqual([0, 0.5, 1])
    expect(values(tagged('json', '[4, 5, 6]'))).toEqual([4, 5, 6])
    expect(values([tagged('decimal', '1.5'), tagged('decimal', '-2'), 3n])).toEqual([1.5, -2, 3])
    // No other column: no metadata at all.
    expect(embed({ id: 'a', embedding: [1, 2, 3] })).toEqual({
      kind: 'embedding',
      id: 'a',
      values: [1, 2, 3],
    })
  })

  it('copies only the listed metadata columns, and refuses a listed column the record lacks', () => {
    const setting = { embedding: { id: 'sku', vector: 'v', metadata: ['title'] } }
    expect(embed({ sku: 'k-1', v: [1, 2], title: 't', secret_note: 'x' }, setting)).toEqual({
      kind: 'embedding',
      id: 'k-1',
      values: [1, 2],
      metadata: { title: 't' },
    })
    expect(refusal({ sku: 'k-1', v: [1, 2] }, setting)).toBe(
      'record "k-1": metadata column "title" (convert.embedding.metadata) is not a column of the record',
    )
  })

  it('refuses bad vectors, naming the column and the rule, never the values', () => {
    expect(refusal({ id: 7, embedding: [1, 2] })).toBe(
      'record "7": vector column "embedding" (convert.embedding.vector) has 2 values, convert.embedding.dimension is 3',
    )
    expect(refusal({ id: 7, embedding: [1, Number.NaN, 3] })).toBe(
      'record "7": vector column "embedding" (convert.embedding.vector) element 1 is NaN: a vector takes finite numbers only',
    )
    expect(refusal({ id: 7, embedding: [1, 2, Number.POSITIVE_INFINITY] })).toContain(
      'element 2 is infinite: a vector takes finite numbers only',
    )
    expect(refusal({ id: 7, embedding: ['1', 2, 3] })).toContain(
      'element 0 is string: a vector takes numbers only',
    )
    expect(refusal({ id: 7, embedding: [1, null, 3] })).toContain(
      'element 1 is null: a vector takes numbers only',
    )
    expect(refusal({ id: 7, embedding: '[1,2,"3"]' })).toContain('element 2 is string')
    expect(refusal({ id: 7, embedding: '{1,2,3}' })).toBe(
      `record "7": vector column "embedding" (convert.embedding.vector) takes a number array or vector text such as '[0.1,0.2,0.3]', got text that is not one`,
    )
    expect(refusal({ id: 7, embedding: '[1,2,NaN]' })).toContain('got text that is not one')
    expect(refusal({ id: 7, embedding: null })).toContain('got null')
    expect(refusal({ id: 7, embedding: new Uint8Array(12) })).toContain('got binary')
    expect(refusal({ id: 7 })).toContain('got no such column')
    expect(
      refusal({ id: 7, embedding: [] }, { embedding: { id: 'id', vector: 'embedding' } }),
    ).toBe('record "7": vector column "embedding" (convert.embedding.vector) is an empty vector')
    // Without a declared dimension any length passes (the sink checks its index's dimension).
    expect(
      embed({ id: 7, embedding: [1] }, { embedding: { id: 'id', vector: 'embedding' } }),
    ).toEqual({ kind: 'embedding', id: '7', values: [1] })
  })

  it('refuses a row without a usable id', () => {
    expect(refusal({ embedding: [1, 2, 3] })).toBe(
      'record: id column "id" (convert.embedding.id) takes text or an integer, got no such column',
    )
    expect(refusal({ id: null, embedding: [1, 2, 3] })).toContain('got null')
    expect(refusal({ id: '', embedding: [1, 2, 3] })).toContain('takes a non-empty text')
    expect(refusal({ id: 1.5, embedding: [1, 2, 3] })).toContain(
      'takes text or an integer, got number',
    )
    expect(refusal({ id: tagged('decimal', '2.5'), embedding: [1, 2, 3] })).toContain(
      'got decimal text',
    )
    expect(embed({ id: tagged('decimal', '42'), embedding: [1, 2, 3] })).toMatchObject({
      id: '42',
    })
  })

  it('is refused by validation without convert.embedding', () => {
    const world = createMemoryWorld()
    const registry = new MapProviderRegistry([world.provider])
    const pipeline = (convert?: unknown): Pipeline => ({
      id: 'p',
      nodes: [
        memoryNode('src', 'source', { name: 'in' }),
        memoryNode(
          'dst',
          'sink',
          { name: 'out', kind: 'embedding' },
          { convert: convert as never },
        ),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })
    expect(validatePipeline(pipeline(), registry)).toEqual([
      expect.objectContaining({ path: '/edges/0', rule: 'embedding' }),
    ])
    expect(validatePipeline(pipeline({ key: ['id'] }), registry)).toEqual([
      expect.objectContaining({ path: '/edges/0', rule: 'embedding' }),
    ])
    expect(validatePipeline(pipeline(options), registry)).toEqual([])
  })

  it('in a pipeline: good rows arrive as embeddings, a bad vector is refused alone under a budget', async () => {
    const world = createMemoryWorld()
    world.sources.set('products', [
      { kind: 'record', values: { id: 1n, embedding: '[0.1,0.2,0.3]', title: 'one' } },
      { kind: 'record', values: { id: 2n, embedding: '[0.1,0.2]', title: 'two' } },
      { kind: 'record', values: { id: 3n, embedding: [1, 2, 3], title: null } },
    ])
    const pipeline: Pipeline = {
      id: 'p',
      nodes: [
        memoryNode('pg', 'source', { name: 'products' }),
        memoryNode('vectors', 'sink', { name: 'index', kind: 'embedding' }, { convert: options }),
      ],
      edges: [{ from: 'pg', to: 'vectors' }],
    }
    const failed = await runPipeline(world, pipeline)
    expect(failed.summary.status).toBe('failed')
    expect(failed.summary.error?.message).toContain(
      'vector column "embedding" (convert.embedding.vector) has 2 values',
    )

    const partial = await runPipeline(world, { ...pipeline, options: { failureBudget: 1 } })
    expect(partial.summary.status).toBe('partial')
    const index = world.sinks.get('index')!
    expect([...index.keys()].sort()).toEqual(['1', '3'])
    expect(index.get('1')).toEqual({
      kind: 'embedding',
      id: '1',
      values: [0.1, 0.2, 0.3],
      metadata: { title: 'one' },
    })
    expect(index.get('3')).toEqual({ kind: 'embedding', id: '3', values: [1, 2, 3] })
  })
})

describe('JSONL blob -> documents and records: numbers JSON.parse changes', () => {
  const line =
    '{"id":9007199254740993,"n":12345678901234567890,"o":{"x":1e400,"y":[0.10000000000000000555]},"ok":2.5}\n'
  const blob = {
    kind: 'blob' as const,
    key: 'rows.jsonl',
    body: new TextEncoder().encode(line),
  }
  async function all(to: 'document' | 'record') {
    const converter = converterFor('blob', to, 'jsonl')
    if (!converter?.many) throw new Error('expected a one-to-many converter')
    const out: unknown[] = []
    for await (const item of converter.convert(blob, { index: 0 })) out.push(item)
    return out
  }

  it('documents keep those fields as written (rawJson) and a number id as written', async () => {
    const [document] = (await all('document')) as DocumentData[]
    expect(document!.id).toBe('9007199254740993')
    expect(document!.rawJson).toEqual({
      id: '9007199254740993',
      n: '12345678901234567890',
      o: '{"x":1e400,"y":[0.10000000000000000555]}',
    })
    expect(document!.content.ok).toBe(2.5)
  })

  it('records get a decimal for such a number and JSON text for an object holding one', async () => {
    const [record] = (await all('record')) as { values: Record<string, unknown> }[]
    expect(record!.values.n).toEqual(tagged('decimal', '12345678901234567890'))
    expect(record!.values.id).toEqual(tagged('decimal', '9007199254740993'))
    expect(record!.values.o).toEqual(tagged('json', '{"x":1e400,"y":[0.10000000000000000555]}'))
    expect(record!.values.ok).toBe(2.5)
  })
})
