import { exactNumberValue, HIT_RAW_JSON } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { ExactSerializer, type SearchResponse } from './elasticsearch-client.js'

describe('ExactSerializer', () => {
  const serializer = new ExactSerializer()

  it('keeps long sort values and _source numbers JSON.parse changes; sends them back as written', () => {
    const text =
      '{"pit_id":"p","hits":{"hits":[' +
      '{"_index":"i","_id":"a","_source":{"seq":1},"sort":[1,0]},' +
      '{"_index":"i","_id":"b","_source":{"seq":1700000000123456789,"t":"x"},"sort":[1700000000123456789,4294967297]}]}}'
    const body = serializer.deserialize<SearchResponse>(text)
    const [a, b] = body.hits.hits
    expect(a!.sort).toEqual([1, 0])
    expect(a![HIT_RAW_JSON]).toBeUndefined()
    expect(b!.sort).toEqual([{ number: '1700000000123456789' }, 4294967297])
    expect(b![HIT_RAW_JSON]).toEqual({ seq: '1700000000123456789' })
    expect(b!._source).toEqual({ seq: 1700000000123456800, t: 'x' })
    // The raw text stays off the hit's enumerable fields.
    expect(Object.keys(b!)).toEqual(['_index', '_id', '_source', 'sort'])
    const request = serializer.serialize({
      search_after: b!.sort!.map((value) => exactNumberValue(value, 'after')),
      size: 2,
    })
    expect(request).toBe('{"search_after":[1700000000123456789,4294967297],"size":2}')
  })

  it('leaves bodies without such numbers as JSON.parse gives them', () => {
    const text =
      '{"hits":{"hits":[{"_id":"a","_source":{"s":"12345678901234567890","x":0.5},"sort":[1234567890123]}]}}'
    expect(serializer.deserialize(text)).toEqual(JSON.parse(text))
    expect(serializer.serialize({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}')
  })
})
