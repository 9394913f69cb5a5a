import { describe, expect, it } from 'vitest'
import { ItemRows } from './item-rows.js'

/** Every batch row as [item, row within the item], through `locate` and `start`. */
function addresses(rows: ItemRows): [number, number][] {
  const out: [number, number][] = []
  for (let r = 0; r < rows.count; r++) {
    const i = rows.locate(r)
    out.push([i, r - rows.start(i)])
  }
  return out
}

const items = (...counts: number[]) => new ItemRows(counts.map((rows) => ({ rows })))

describe('ItemRows', () => {
  it('numbers the rows of one item as they are', () => {
    const rows = items(3)
    expect(rows.count).toBe(3)
    expect(rows.start(0)).toBe(0)
    expect(addresses(rows)).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
    ])
  })

  it('numbers the rows of several items end to end, first and last rows of each included', () => {
    const rows = items(2, 1, 3)
    expect(rows.count).toBe(6)
    expect([0, 1, 2].map((i) => rows.start(i))).toEqual([0, 2, 3])
    expect(addresses(rows)).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 0],
      [2, 1],
      [2, 2],
    ])
  })

  it('never names an item of no rows, wherever it stands', () => {
    const rows = items(0, 2, 0, 0, 1, 0)
    expect(rows.count).toBe(3)
    expect([0, 1, 2, 3, 4, 5].map((i) => rows.start(i))).toEqual([0, 0, 2, 2, 2, 3])
    expect(addresses(rows)).toEqual([
      [1, 0],
      [1, 1],
      [4, 0],
    ])
  })

  it('agrees with a scan over many items of uneven sizes', () => {
    const counts = Array.from({ length: 50 }, (_, i) => (i * 7) % 5)
    const expected: [number, number][] = []
    counts.forEach((n, i) => {
      for (let r = 0; r < n; r++) expected.push([i, r])
    })
    const rows = items(...counts)
    expect(rows.count).toBe(expected.length)
    expect(addresses(rows)).toEqual(expected)
  })

  it('counts no rows for no items or only empty ones', () => {
    expect(items().count).toBe(0)
    expect(items(0, 0).count).toBe(0)
  })
})
