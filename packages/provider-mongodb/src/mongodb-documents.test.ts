import type { DocumentData } from '@nvisy/provider-core'
import { BSON } from 'mongodb'
import { describe, expect, it } from 'vitest'
import {
  contentToDocument,
  exactBsonNumber,
  fromDocumentData,
  rawJsonToBson,
} from './mongodb-documents.js'

const samples: Record<string, unknown>[] = [
  {
    n: 1,
    f: 1.5,
    big: 2 ** 40,
    huge: 2 ** 70,
    neg: -2147483649,
    zero: -0,
    s: 'x',
    b: true,
    nil: null,
  },
  { nested: { list: [1, 2.25, [3, { deep: 2 ** 33 }], 'x'], empty: {}, arr: [] } },
  {
    _id: { $oid: '65f000000000000000000001' },
    when: { $date: { $numberLong: '1709214300123' } },
    long: { $numberLong: '9223372036854775807' },
    dec: { $numberDecimal: '1.10' },
    dbl: { $numberDouble: '1.0' },
    int: { $numberInt: '7' },
    bin: { $binary: { base64: 'AAEC', subType: '00' } },
    inner: [
      { ts: { $timestamp: { t: 1, i: 2 } } },
      { re: { $regularExpression: { pattern: 'a', options: 'i' } } },
    ],
  },
]

describe('contentToDocument', () => {
  it.each(
    samples.map((sample, i) => [i, sample]),
  )('sample %i serializes to the same BSON as EJSON.deserialize', (_i, sample) => {
    const expected = BSON.serialize(BSON.EJSON.deserialize(sample, { relaxed: false }))
    const actual = BSON.serialize(contentToDocument(sample as never))
    expect(Buffer.from(actual).toString('hex')).toBe(Buffer.from(expected).toString('hex'))
  })

  it('does not mutate the content', () => {
    const content = { a: { b: [2 ** 40] } }
    const copy = structuredClone(content)
    contentToDocument(content)
    expect(content).toEqual(copy)
  })
})

/** A value as MongoDB's own canonical Extended JSON text, through real BSON bytes. */
function stored(value: unknown): string {
  const bytes = BSON.serialize({ v: value })
  return BSON.EJSON.stringify(BSON.deserialize(bytes, { promoteValues: false }).v, {
    relaxed: false,
  })
}

describe('exact JSON text (rawJson) to BSON', () => {
  it.each([
    ['7', '{"$numberInt":"7"}'],
    ['-2147483648', '{"$numberInt":"-2147483648"}'],
    ['2.0', '{"$numberInt":"2"}'],
    ['-0', '{"$numberInt":"0"}'],
    ['2147483648', '{"$numberLong":"2147483648"}'],
    ['9007199254740993', '{"$numberLong":"9007199254740993"}'],
    ['-9223372036854775808', '{"$numberLong":"-9223372036854775808"}'],
    ['1e18', '{"$numberLong":"1000000000000000000"}'],
    ['2.50', '{"$numberDouble":"2.5"}'],
    ['0.1', '{"$numberDouble":"0.1"}'],
    ['5e-324', '{"$numberDouble":"5e-324"}'],
    // 2^63: a double holds the value, but prints back as 9223372036854776000.
    ['9223372036854775808', '{"$numberDecimal":"9223372036854775808"}'],
    ['100000000000000000000', '{"$numberDouble":"100000000000000000000.0"}'],
    ['9223372036854775809', '{"$numberDecimal":"9223372036854775809"}'],
    ['12345678901234567890123', '{"$numberDecimal":"12345678901234567890123"}'],
    ['1e400', '{"$numberDecimal":"1E+400"}'],
    ['-1.5e-400', '{"$numberDecimal":"-1.5E-400"}'],
    ['0.10000000000000000001', '{"$numberDecimal":"0.10000000000000000001"}'],
    [`1${'0'.repeat(40)}1e-10`, undefined],
  ])('a JSON number %s is stored as a type that holds it exactly: %s', (text, expected) => {
    if (expected === undefined) {
      expect(() => exactBsonNumber(text)).toThrow(/cannot be stored exactly/)
      return
    }
    expect(stored(exactBsonNumber(text))).toBe(expected)
  })

  it('keeps key order and nesting, typing each number from its text', () => {
    const value = rawJsonToBson(
      '{"z":[1, 1e400, {"a":null}], "a":"é", "n":12345678901234567890123}',
      'f',
    )
    expect(stored(value)).toBe(
      '{"z":[{"$numberInt":"1"},{"$numberDecimal":"1E+400"},{"a":null}],"a":"é","n":{"$numberDecimal":"12345678901234567890123"}}',
    )
    // Extended JSON wrappers mean what they mean on the content path.
    expect(stored(rawJsonToBson('{"l":{"$numberLong":"9223372036854775807"}}', 'f'))).toBe(
      '{"l":{"$numberLong":"9223372036854775807"}}',
    )
  })

  it('refuses a repeated key, a number nothing holds and invalid text, naming the field', () => {
    const where = 'document "1": field "J son"'
    for (const [text, reason] of [
      ['{"b":1,"a":2,"b":3}', /field "J son": its JSON text repeats the key "b" in one object/],
      ['[{"a":1,"a":1}]', /field "J son": its JSON text repeats a key in one object/],
      [`[1${'2'.repeat(40)}]`, /field "J son": the number 1222.* cannot be stored exactly/],
      ['{"a":', /field "J son": its JSON text is not valid JSON/],
    ] as const) {
      let error: unknown
      try {
        rawJsonToBson(text, where)
      } catch (e) {
        error = e
      }
      expect((error as { kind?: string })?.kind, text).toBe('data')
      expect((error as Error).message, text).toMatch(reason)
      expect((error as Error).message, text).toContain('refused rather than stored changed')
    }
  })

  it('fromDocumentData types rawJson fields from their text and leaves content alone', () => {
    const raw = '{"n":9007199254740993,"x":1e400,"d":2.50}'
    const data: DocumentData = {
      kind: 'document',
      id: 'k1',
      content: { first: 1, j: JSON.parse(raw), last: 'z' },
      rawJson: { j: raw, gone: '1e400' },
    }
    const before = structuredClone(data)
    const doc = fromDocumentData(data, 'string')
    expect(data).toEqual(before)
    expect(Object.keys(doc)).toEqual(['_id', 'first', 'j', 'last'])
    expect(stored(doc)).toBe(
      '{"_id":"k1","first":{"$numberInt":"1"},"j":{"n":{"$numberLong":"9007199254740993"},"x":{"$numberDecimal":"1E+400"},"d":{"$numberDouble":"2.5"}},"last":"z"}',
    )
    expect(() => fromDocumentData({ ...data, rawJson: { j: '{"a":1,"a":2}' } }, 'string')).toThrow(
      /document "k1": field "j": its JSON text repeats the key "a"/,
    )
  })
})
