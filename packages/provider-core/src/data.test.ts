import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  approximateSize,
  COLUMNS_WIRE,
  columnsRecord,
  columnValues,
  type Data,
  DocumentDataSchema,
  describeItem,
  documentJson,
  isTaggedValue,
  iterateBytes,
  JsonDuplicateKeyError,
  parseJsonExact,
  readBytes,
  sqlValueJson,
  sqlValuesToDocument,
  sqlValueToJson,
  tagged,
  type WireRows,
} from './data.js'
import * as core from './index.js'
import { validateValue } from './schema.js'
import { VERSION } from './version.js'

describe('sqlValueToJson', () => {
  it('keeps JSON-safe scalars', () => {
    expect(sqlValueToJson(null)).toBeNull()
    expect(sqlValueToJson(true)).toBe(true)
    expect(sqlValueToJson('text')).toBe('text')
    expect(sqlValueToJson(1.5)).toBe(1.5)
  })

  it('turns non-finite numbers into strings', () => {
    expect(sqlValueToJson(Number.NaN)).toBe('NaN')
    expect(sqlValueToJson(Number.POSITIVE_INFINITY)).toBe('Infinity')
    expect(sqlValueToJson(Number.NEGATIVE_INFINITY)).toBe('-Infinity')
  })

  it('keeps safe bigints as numbers and larger ones as exact strings', () => {
    expect(sqlValueToJson(42n)).toBe(42)
    expect(sqlValueToJson(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER)
    expect(sqlValueToJson(BigInt(Number.MIN_SAFE_INTEGER))).toBe(Number.MIN_SAFE_INTEGER)
    expect(sqlValueToJson(9007199254740993n)).toBe('9007199254740993')
    expect(sqlValueToJson(-9223372036854775808n)).toBe('-9223372036854775808')
  })

  it('keeps decimals and temporal values as their exact text, and parses JSON text', () => {
    expect(sqlValueToJson(tagged('decimal', '12345678901234567890.123456789'))).toBe(
      '12345678901234567890.123456789',
    )
    expect(sqlValueToJson(tagged('timestamptz', '2024-02-29T13:45:00.123456Z'))).toBe(
      '2024-02-29T13:45:00.123456Z',
    )
    expect(sqlValueToJson(tagged('date', '2024-02-29'))).toBe('2024-02-29')
    expect(sqlValueToJson(tagged('json', '{"a": [1, "x", null]}'))).toEqual({ a: [1, 'x', null] })
    expect(sqlValueToJson(tagged('json', '"just a string"'))).toBe('just a string')
  })

  it('base64-encodes binary and converts arrays element by element', () => {
    expect(sqlValueToJson(new Uint8Array([0, 255, 16]))).toBe('AP8Q')
    expect(sqlValueToJson(Buffer.from('hi'))).toBe('aGk=')
    expect(sqlValueToJson([1n, tagged('decimal', '1.10'), null, [true]])).toEqual([
      1,
      '1.10',
      null,
      [true],
    ])
  })

  it('gives output that survives a JSON round trip', () => {
    const value = sqlValueToJson([2n ** 70n, new Uint8Array([1]), tagged('json', '{"k":1}')])
    expect(JSON.parse(JSON.stringify(value))).toEqual(value)
  })
})

describe('exact JSON text', () => {
  // Text a JSON column may hold that JavaScript values cannot: a repeated key, numbers beyond
  // a double and beyond 2^53, digits a double rounds, trailing zeros, spacing.
  const hostile = '{"b":1,"a":2,"b":3, "n":12345678901234567890123,"x":1e400,"d":2.50}'

  it('sqlValueJson writes JSON text verbatim and other values as sqlValueToJson does', () => {
    expect(sqlValueJson(tagged('json', hostile))).toBe(hostile)
    expect(sqlValueJson([tagged('json', '[1e400]'), null, tagged('json', '"s"')])).toBe(
      '[[1e400],null,"s"]',
    )
    expect(sqlValueJson(2n ** 70n)).toBe('"1180591620717411303424"')
    expect(sqlValueJson(tagged('decimal', '1.10'))).toBe('"1.10"')
    expect(sqlValueJson(new Uint8Array([0, 255]))).toBe('"AP8="')
    expect(sqlValueJson(null)).toBe('null')
  })

  it('sqlValuesToDocument keeps parsed content and the exact text of JSON columns only', () => {
    const document = sqlValuesToDocument({
      id: 7n,
      j: tagged('json', hostile),
      list: [tagged('json', '{"k":1e400}')],
      t: 'text',
    })
    // Readers of content see what they always saw (the parsed JSON).
    expect(document.content).toEqual({
      id: 7,
      j: JSON.parse(hostile),
      list: [{ k: Number.POSITIVE_INFINITY }],
      t: 'text',
    })
    expect(document.rawJson).toEqual({ j: hostile, list: '[{"k":1e400}]' })
    expect(sqlValuesToDocument({ a: 1, b: 'x' })).toEqual({ content: { a: 1, b: 'x' } })
  })

  it('sqlValuesToDocument makes a column named __proto__ a field, never the prototype', () => {
    const { content, rawJson } = sqlValuesToDocument({ ['__proto__']: tagged('json', '{"p":1}') })
    expect(Object.getPrototypeOf(content)).toBe(Object.prototype)
    expect(Object.keys(content)).toEqual(['__proto__'])
    expect(documentJson(content, rawJson)).toBe('{"__proto__":{"p":1}}')
  })

  it('documentJson writes raw fields verbatim in key order and the rest as JSON.stringify', () => {
    const { content, rawJson } = sqlValuesToDocument({
      first: 1,
      j: tagged('json', hostile),
      last: 'z',
    })
    expect(documentJson(content, rawJson)).toBe(`{"first":1,"j":${hostile},"last":"z"}`)
    // A copy with a field added or left out: raw text only for fields still there.
    const { j: _j, ...rest } = content
    expect(documentJson({ id: 'a', ...rest }, rawJson)).toBe('{"id":"a","first":1,"last":"z"}')
    expect(documentJson({ id: 'a', ...content }, rawJson)).toBe(
      `{"id":"a","first":1,"j":${hostile},"last":"z"}`,
    )
  })

  it('documentJson writes one line: line breaks between tokens of raw text become spaces', () => {
    // PostgreSQL json keeps its input's whitespace, line breaks included.
    const raw = '{\n  "a": [1,\r\n  2],\n  "s": "x\\ny"\n}'
    const text = documentJson({ j: null, k: 'a\nb' }, { j: raw })
    expect(text).toBe('{"j":{   "a": [1,    2],   "s": "x\\ny" },"k":"a\\nb"}')
    expect(text).not.toMatch(/[\r\n]/)
    expect(JSON.parse(text)).toEqual({ j: { a: [1, 2], s: 'x\ny' }, k: 'a\nb' })
  })

  it('documentJson without raw text is JSON.stringify, replacer and undefined fields included', () => {
    const replacer = (_key: string, value: unknown) =>
      typeof value === 'bigint' ? value.toString() : value
    const object = { a: 1n, b: undefined, c: { d: 2n }, e: new Date(0) }
    expect(documentJson(object, undefined, replacer)).toBe(JSON.stringify(object, replacer))
    expect(documentJson(object, { z: '1' }, replacer)).toBe(JSON.stringify(object, replacer))
    expect(documentJson({ ...object, r: 0 }, { r: '1e400' }, replacer)).toBe(
      '{"a":"1","c":{"d":"2"},"e":"1970-01-01T00:00:00.000Z","r":1e400}',
    )
  })

  it('parseJsonExact hands every number to parseNumber as written', () => {
    const seen: string[] = []
    const value = parseJsonExact('[1e400, 2.50, -0, 12345678901234567890123, {"k": 0.1}]', (t) => {
      seen.push(t)
      return `#${t}`
    })
    expect(seen).toEqual(['1e400', '2.50', '-0', '12345678901234567890123', '0.1'])
    expect(value).toEqual(['#1e400', '#2.50', '#-0', '#12345678901234567890123', { k: '#0.1' }])
    expect(parseJsonExact(String.raw`{"a":[1,{"b":"c:d\\"}]}`)).toEqual({
      a: ['1', { b: 'c:d\\' }],
    })
  })

  it('parseJsonExact refuses a repeated key, equal values and nested objects included', () => {
    for (const [text, key] of [
      ['{"b":1,"a":2,"b":3}', 'b'],
      ['{"a":1, "a":{"x":[true,false,null]}}', 'a'],
      ['[{"o":{"k":"v","k":"w"}}]', 'k'],
      ['{"a":1,"a":1}', undefined],
      ['{"s":"x:y\\":z","t":{"u":[],"u":[]}}', undefined],
    ] as const) {
      let error: unknown
      try {
        parseJsonExact(text)
      } catch (e) {
        error = e
      }
      expect(error, text).toBeInstanceOf(JsonDuplicateKeyError)
      expect((error as JsonDuplicateKeyError).key, text).toBe(key)
    }
    // The same key in different objects, or colons and quotes inside strings, are fine.
    expect(parseJsonExact(String.raw`{"a":{"a":1},"b":[{"a":2},{"a":2}],"c":"\":\\\"::"}`)).toEqual(
      {
        a: { a: '1' },
        b: [{ a: '2' }, { a: '2' }],
        c: '":\\"::',
      },
    )
    expect(() => parseJsonExact('{"a":1')).toThrow(SyntaxError)
    expect(() => parseJsonExact('{"a":1')).not.toThrow(JsonDuplicateKeyError)
  })

  it('DocumentDataSchema takes rawJson as text per field', () => {
    const document = { kind: 'document', id: 'a', content: { j: 1 }, rawJson: { j: '1.0' } }
    expect(() => validateValue(DocumentDataSchema, document, { what: 'document' })).not.toThrow()
    expect(() =>
      validateValue(DocumentDataSchema, { ...document, rawJson: { j: 1 } }, { what: 'document' }),
    ).toThrow(/rawJson/)
  })
})

describe('tagged values', () => {
  it('isTaggedValue recognises only tagged values', () => {
    expect(isTaggedValue(tagged('decimal', '1'))).toBe(true)
    for (const value of [
      null,
      '1',
      1,
      new Uint8Array(),
      [],
      { $type: 'decimal' },
      { value: '1' },
    ]) {
      expect(isTaggedValue(value)).toBe(false)
    }
  })
})

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part)
}

describe('readBytes and iterateBytes', () => {
  it('reads bytes and streams whole', async () => {
    expect((await readBytes(new Uint8Array([1, 2, 3]))).equals(Buffer.from([1, 2, 3]))).toBe(true)
    expect((await readBytes(chunks('ab', 'cd', ''))).toString()).toBe('abcd')
    expect(
      (await readBytes(Readable.from([Buffer.from('node '), Buffer.from('stream')]))).toString(),
    ).toBe('node stream')
    expect((await readBytes(chunks())).length).toBe(0)
  })

  it('reads a view of a larger buffer without its neighbours', async () => {
    const whole = new Uint8Array([9, 1, 2, 9])
    expect([...(await readBytes(whole.subarray(1, 3)))]).toEqual([1, 2])
  })

  it('accepts a body of exactly maxBytes and refuses a larger one', async () => {
    expect((await readBytes(chunks('abc', 'de'), 5)).toString()).toBe('abcde')
    await expect(readBytes(chunks('abc', 'def'), 5)).rejects.toThrow(RangeError)
    await expect(readBytes(chunks('abc', 'def'), 5)).rejects.toThrow('larger than 5 bytes')
    expect((await readBytes(new Uint8Array(5), 5)).length).toBe(5)
    await expect(readBytes(new Uint8Array(6), 5)).rejects.toThrow(RangeError)
  })

  it('stops pulling from the stream once the limit is passed', async () => {
    let pulled = 0
    async function* endless() {
      while (true) {
        pulled++
        yield new Uint8Array(4)
      }
    }
    await expect(readBytes(endless(), 10)).rejects.toThrow(RangeError)
    expect(pulled).toBe(3)
  })

  it('iterateBytes yields a Uint8Array once and a stream chunk by chunk', async () => {
    const out: string[] = []
    for await (const chunk of iterateBytes(Buffer.from('one')))
      out.push(Buffer.from(chunk).toString())
    for await (const chunk of iterateBytes(chunks('a', 'b')))
      out.push(Buffer.from(chunk).toString())
    expect(out).toEqual(['one', 'a', 'b'])
  })
})

describe('approximateSize', () => {
  it('counts each kind roughly by its content', () => {
    expect(approximateSize({ kind: 'blob', key: 'k', body: new Uint8Array(100) })).toBe(100)
    expect(approximateSize({ kind: 'blob', key: 'k', body: chunks('x'), size: 5000 })).toBe(5000)
    expect(approximateSize({ kind: 'blob', key: 'k', body: chunks('x') })).toBe(0)
    expect(
      approximateSize({
        kind: 'record',
        values: {
          id: 1n,
          name: 'abcd',
          ok: true,
          none: null,
          bin: new Uint8Array(10),
          d: tagged('decimal', '1.25'),
          arr: [1, 2],
        },
      }),
    ).toBe(2 + 8 + 4 + 4 + 2 + 1 + 4 + 4 + 3 + 10 + 1 + 4 + 3 + 16)
    expect(approximateSize({ kind: 'embedding', id: 'e1', values: new Float32Array(8) })).toBe(
      2 + 32,
    )
    expect(approximateSize({ kind: 'document', id: 'd', content: { a: 1 } })).toBe(1 + 7)
    // A source that knows the serialized size (a JSONL line) saves serializing the content.
    expect(approximateSize({ kind: 'document', id: 'd', content: { a: 1 }, size: 120 })).toBe(
      1 + 120,
    )
    expect(
      approximateSize({
        kind: 'message',
        id: 'm',
        payload: new Uint8Array(3),
        headers: { h: 'v', name: 'value' },
      }),
    ).toBe(1 + 3 + (1 + 1 + 4) + (4 + 5 + 4))
  })

  it('sizes a graph that holds bigints', () => {
    const graph: Data = {
      kind: 'graph',
      nodes: [{ id: 'n1', labels: ['L'], properties: { big: 2n ** 64n } }],
      edges: [],
    }
    expect(approximateSize(graph)).toBeGreaterThan(20)
  })

  it('grows with the content', () => {
    const small = approximateSize({ kind: 'document', id: 'd', content: { a: 'x' } })
    const large = approximateSize({ kind: 'document', id: 'd', content: { a: 'x'.repeat(1000) } })
    expect(large - small).toBe(999)
  })
})

describe('describeItem', () => {
  it('names the item by key or id, never by its body', () => {
    expect(describeItem({ kind: 'blob', key: 'a/b.txt', body: Buffer.from('SECRET BODY') })).toBe(
      'blob "a/b.txt"',
    )
    expect(describeItem({ kind: 'record', values: { password: 'SECRET' } })).toBe('record')
    expect(describeItem({ kind: 'document', id: 'doc-1', content: { secret: 'SECRET' } })).toBe(
      'document "doc-1"',
    )
    expect(describeItem({ kind: 'embedding', id: 'e', values: [1] })).toBe('embedding "e"')
    expect(describeItem({ kind: 'message', id: 'm', payload: Buffer.from('SECRET') })).toBe(
      'message "m"',
    )
    expect(describeItem({ kind: 'graph', nodes: [], edges: [] })).toBe('graph (0 nodes, 0 edges)')
  })
})

describe('package', () => {
  it('VERSION equals package.json version', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect(VERSION).toBe(manifest.version)
    expect(core.VERSION).toBe(manifest.version)
  })

  it('exports the public API from the index', () => {
    for (const name of [
      'defineProvider',
      'ProviderError',
      'toProviderError',
      'Secret',
      'validateValue',
      'compileSchema',
      'Redactor',
      'collectSecrets',
      'redactObject',
      'retry',
      'batchStream',
      'chunkBy',
      'mapConcurrent',
      'sleep',
      'raceAbort',
      'readBytes',
      'iterateBytes',
      'sqlValueToJson',
      'sqlValueJson',
      'sqlValuesToDocument',
      'documentJson',
      'parseJsonExact',
      'JsonDuplicateKeyError',
      'Type',
      'SPECIFICATION_VERSION',
    ]) {
      expect(core, name).toHaveProperty(name)
    }
  })
})

describe('columnValues and columnsRecord', () => {
  const wire: WireRows = {
    format: COLUMNS_WIRE,
    columns: ['id', 'amount', 'at', 'note'],
    rows: 2,
    values: [
      [1n, 2n],
      ['12.50', null],
      ['2024-01-01T00:00:00', '2024-01-02T00:00:00'],
      ['a', null],
    ],
    tags: [undefined, 'decimal', 'timestamp'],
  }

  it('gives a tagged column text back as tagged values, other columns as they are', () => {
    expect([0, 1].map(columnValues(wire, 1))).toEqual([tagged('decimal', '12.50'), null])
    expect([0, 1].map(columnValues(wire, 2))).toEqual([
      tagged('timestamp', '2024-01-01T00:00:00'),
      tagged('timestamp', '2024-01-02T00:00:00'),
    ])
    // No tag (past the end of `tags`, or undefined in it): the strings are the values.
    expect([0, 1].map(columnValues(wire, 3))).toEqual(['a', null])
    expect([0, 1].map(columnValues(wire, 0))).toEqual([1n, 2n])
    expect(columnsRecord(wire, 0)).toEqual({
      kind: 'record',
      values: {
        id: 1n,
        amount: tagged('decimal', '12.50'),
        at: tagged('timestamp', '2024-01-01T00:00:00'),
        note: 'a',
      },
    })
  })
})
