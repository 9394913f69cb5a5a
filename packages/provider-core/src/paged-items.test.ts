import { describe, expect, it } from 'vitest'
import type { ReadItem } from './contract.js'
import { approximateSize, COLUMNS_WIRE, type RecordData, type SqlValue } from './data.js'
import { columnBatches, itemsFromPages, type Page } from './paged-items.js'

function source(pages: number[][], log: string[]) {
  return async function* (): AsyncGenerator<Page<number, { n: number }>, void, undefined> {
    try {
      for (const rows of pages) {
        await Promise.resolve()
        yield {
          rows,
          build: (n) => {
            if (n < 0) throw new Error(`bad row ${n}`)
            return { n }
          },
        }
      }
      log.push('end')
    } finally {
      log.push('finally')
    }
  }
}

describe('itemsFromPages', () => {
  it('hands out every item of every page in order, skipping empty pages', async () => {
    const log: string[] = []
    const items = itemsFromPages(source([[1, 2], [], [3]], log)(), new AbortController().signal)
    const out: number[] = []
    for await (const item of items) out.push(item.n)
    expect(out).toEqual([1, 2, 3])
    expect(log).toEqual(['end', 'finally'])
    expect(await items.next()).toEqual({ done: true, value: undefined })
  })

  it('lets other I/O run between items of a long page, and still hands out every item', async () => {
    const log: string[] = []
    const page = Array.from({ length: 3000 }, (_, i) => i)
    const items = itemsFromPages(source([page], log)(), new AbortController().signal)
    let turns = 0
    let stopped = false
    const tick = () => {
      turns++
      if (!stopped) setImmediate(tick)
    }
    setImmediate(tick)
    const out: number[] = []
    // This consumer never waits on I/O itself: `tick` runs only when the items let the loop turn.
    for await (const item of items) out.push(item.n)
    stopped = true
    expect(out).toEqual(page)
    expect(turns).toBeGreaterThan(1)
  })

  it('runs the page generator cleanup when the consumer stops early', async () => {
    const log: string[] = []
    const items = itemsFromPages(source([[1, 2], [3]], log)(), new AbortController().signal)
    for await (const item of items) if (item.n === 1) break
    expect(log).toEqual(['finally'])
  })

  it('rejects with a build error after cleaning up, then is done', async () => {
    const log: string[] = []
    const items = itemsFromPages(source([[1, -1, 2]], log)(), new AbortController().signal)
    expect(await items.next()).toEqual({ done: false, value: { n: 1 } })
    await expect(items.next()).rejects.toThrow('bad row -1')
    expect(log).toEqual(['finally'])
    expect(await items.next()).toEqual({ done: true, value: undefined })
  })

  it('rejects with the abort reason and cleans up', async () => {
    const log: string[] = []
    const controller = new AbortController()
    const items = itemsFromPages(source([[1, 2, 3]], log)(), controller.signal)
    expect(await items.next()).toEqual({ done: false, value: { n: 1 } })
    controller.abort(new Error('stop'))
    await expect(items.next()).rejects.toThrow('stop')
    expect(log).toEqual(['finally'])
  })
})

describe('columnBatches', () => {
  const build = (row: number) => ({
    data: { kind: 'record' as const, values: { n: row } },
    context: { n: row },
  })
  async function* pages(list: number[][], pauseMs = 0) {
    for (const rows of list) {
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
      yield { rows, build }
    }
  }
  const prepare = () => ({
    names: ['n', 'double'],
    push: (row: number, columns: SqlValue[][]) => {
      columns[0]!.push(row)
      columns[1]!.push(row * 2)
      return 10
    },
  })
  const shape = (items: ReadItem[]) =>
    items.map((i) => [(i.data as RecordData).wire!.values, i.context])

  it('cuts at maxRows and at maxBytes, each batch with its last row context, whatever the pages', async () => {
    const byRows = await collectAll(
      columnBatches(
        pages([
          [1, 2, 3],
          [4, 5],
        ]),
        prepare,
        { format: COLUMNS_WIRE, maxRows: 2, maxBytes: 1000 },
      ),
    )
    expect(shape(byRows)).toEqual([
      [
        [
          [1, 2],
          [2, 4],
        ],
        { n: 2 },
      ],
      [
        [
          [3, 4],
          [6, 8],
        ],
        { n: 4 },
      ],
      [[[5], [10]], { n: 5 }],
    ])
    const byBytes = await collectAll(
      columnBatches(pages([[1, 2, 3, 4, 5]]), prepare, {
        format: COLUMNS_WIRE,
        maxRows: 100,
        maxBytes: 30,
      }),
    )
    expect(byBytes.map((i) => (i.data as RecordData).wire!.rows)).toEqual([3, 2])
    // A shape's tags travel with every batch (WireRows.tags).
    const tagged = await collectAll(
      columnBatches(pages([[1, 2, 3]]), () => ({ ...prepare(), tags: [undefined, 'decimal'] }), {
        format: COLUMNS_WIRE,
        maxRows: 2,
        maxBytes: 1000,
      }),
    )
    expect(tagged.map((i) => (i.data as RecordData).wire!.tags)).toEqual([
      [undefined, 'decimal'],
      [undefined, 'decimal'],
    ])
    expect(byRows.every((i) => (i.data as RecordData).wire!.tags === undefined)).toBe(true)
    // Each batch carries its bytes of source text, which byte bounds count (not its values).
    expect(byBytes.map((i) => (i.data as RecordData).wire!.size)).toEqual([30, 20])
    expect(byBytes.map((i) => approximateSize(i.data))).toEqual([30, 20])
    expect(
      await collectAll(
        columnBatches(pages([]), prepare, { format: COLUMNS_WIRE, maxRows: 2, maxBytes: 10 }),
      ),
    ).toEqual([])
  })

  it('ends a batch older than maxAgeMs with the first row of the next page', async () => {
    const items = await collectAll(
      columnBatches(pages([[1, 2], [3], [4]], 30), prepare, {
        format: COLUMNS_WIRE,
        maxRows: 100,
        maxBytes: 1000,
        maxAgeMs: 20,
      }),
    )
    expect(items.map((i) => (i.data as RecordData).wire!.rows)).toEqual([3, 1])
  })
})

async function collectAll<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}
