import { describe, expect, it } from 'vitest'
import { type KeyRange, partitionPlan, quantileBounds, splitAtBounds } from './key-ranges.js'

describe('key ranges', () => {
  it('puts boundaries at equal shares of the sorted keys, each once', () => {
    const keys = Array.from({ length: 10 }, (_, i) => i + 1)
    expect(quantileBounds(keys, 2)).toEqual([5])
    expect(quantileBounds(keys, 4)).toEqual([2, 5, 7])
    expect(quantileBounds(keys, 20)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(quantileBounds(keys, 1)).toEqual([])
    expect(quantileBounds([], 4)).toEqual([])
    // A skewed key that fills several shares is one boundary, so one range holds it whole.
    expect(quantileBounds([1, 7, 7, 7, 7, 7, 7, 9], 4)).toEqual([7])
    expect(
      quantileBounds(
        [
          ['a', 1],
          ['a', 1],
          ['b', 2],
          ['c', 3],
        ],
        4,
      ),
    ).toEqual([
      ['a', 1],
      ['b', 2],
    ])
  })

  it('splits a stream into ranges between the boundaries, inside its own range', () => {
    type Stream = { table: string; range?: KeyRange<number> }
    const stream: Stream = { table: 't' }
    expect(splitAtBounds(stream, [5, 9])).toEqual([
      { table: 't', range: { through: 5 } },
      { table: 't', range: { after: 5, through: 9 } },
      { table: 't', range: { after: 9 } },
    ])
    expect(
      splitAtBounds<number, Stream>({ table: 't', range: { after: 2, through: 20 } }, [9]),
    ).toEqual([
      { table: 't', range: { after: 2, through: 9 } },
      { table: 't', range: { after: 9, through: 20 } },
    ])
    expect(splitAtBounds<number, Stream>(stream, [])).toEqual([{ table: 't' }])
  })

  it('says why a plan has fewer partitions than asked', () => {
    expect(partitionPlan([1, 2], 2, 'x')).toEqual({ partitions: [1, 2] })
    expect(partitionPlan([1], 4, 'the stream has 1 row')).toEqual({
      partitions: [1],
      reason: 'the stream has 1 row: 1 partition',
    })
  })
})
