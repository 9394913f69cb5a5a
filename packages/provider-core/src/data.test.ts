import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  approximateSize,
  type Data,
  describeItem,
  isTaggedValue,
  iterateBytes,
  readBytes,
  sqlValueToJson,
  tagged,
} from './data.js'
import * as core from './index.js'
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
      'Type',
      'SPECIFICATION_VERSION',
    ]) {
      expect(core, name).toHaveProperty(name)
    }
  })
})
