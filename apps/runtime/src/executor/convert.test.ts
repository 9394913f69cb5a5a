import { createHash } from 'node:crypto'
import { type Data, type MessageData, type RecordData, tagged } from '@nvisy/provider-core'
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
