import { BSON } from 'mongodb'
import { describe, expect, it } from 'vitest'
import { contentToDocument } from './mongodb-documents.js'

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
