import { abortReason } from './abort.js'
import type { ReadItem, WireReadOptions } from './contract.js'
import { COLUMNS_WIRE, type SqlValue, type TaggedValueType } from './data.js'

/** Raw rows of one page, and the function that turns one into an item. */
export interface Page<TRow, TItem> {
  rows: readonly TRow[]
  build: (row: TRow) => TItem
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/**
 * Items handed out between two turns of the event loop. Items of a page are ready at once,
 * so a consumer that does not wait for I/O itself would otherwise hold the thread through
 * whole pages, and everything else in the process (a write in flight on another
 * connection: its socket drains, its server replies) would wait for the page to end.
 */
const ITEMS_PER_TURN = 1024

/**
 * The items of an async generator of pages, one by one. Within a page, `next()` builds the
 * item and returns an already-resolved promise: an async generator's `yield` costs several
 * promise hops per item, which is a measurable share of a fast read. The page generator
 * keeps the connection and its cleanup (its `finally`): it is returned when the consumer
 * returns early, when an item cannot be built, and on abort.
 */
export function itemsFromPages<TRow, TItem>(
  pages: AsyncGenerator<Page<TRow, TItem>, void, undefined>,
  signal: AbortSignal,
): AsyncIterableIterator<TItem> {
  let rows: readonly TRow[] = []
  let build: ((row: TRow) => TItem) | undefined
  let index = 0
  let finished = false
  let untilTurn = ITEMS_PER_TURN
  const close = async (error: unknown): Promise<never> => {
    finished = true
    await pages.return(undefined)
    throw error
  }
  const nextPage = async (): Promise<IteratorResult<TItem, undefined>> => {
    for (;;) {
      if (finished) return DONE
      let result: IteratorResult<Page<TRow, TItem>, void>
      try {
        result = await pages.next()
      } catch (error) {
        finished = true
        throw error
      }
      if (result.done) {
        finished = true
        return DONE
      }
      rows = result.value.rows
      build = result.value.build
      index = 0
      if (rows.length > 0) return iterator.next()
    }
  }
  const iterator: AsyncIterableIterator<TItem> = {
    [Symbol.asyncIterator]() {
      return iterator
    },
    next(): Promise<IteratorResult<TItem, undefined>> {
      if (finished || index >= rows.length) return nextPage()
      if (signal.aborted) return close(abortReason(signal))
      const row = rows[index++]!
      let item: TItem
      try {
        item = build!(row)
      } catch (error) {
        return close(error)
      }
      if (index === rows.length) rows = [] // the page can be collected while the item is used
      if (--untilTurn > 0) return Promise.resolve({ done: false, value: item })
      untilTurn = ITEMS_PER_TURN
      return new Promise((resolve) => setImmediate(resolve, { done: false, value: item }))
    },
    async return(): Promise<IteratorResult<TItem, undefined>> {
      finished = true
      rows = []
      await pages.return(undefined)
      return DONE
    },
  }
  return iterator
}

/** How a source puts one raw row into its column arrays; returns the row's size in bytes of source text. */
export type ColumnPusher<TRow> = (row: TRow, columns: SqlValue[][]) => number

/**
 * The columns of a read by column: their names, the pusher, and (optionally) the tag of each
 * column the pusher fills with the text of its tagged values (`WireRows.tags`).
 */
export interface ColumnShape<TRow> {
  names: readonly string[]
  push: ColumnPusher<TRow>
  tags?: readonly (TaggedValueType | undefined)[] | undefined
}

/**
 * `nvisy-columns` batches from pages of raw rows: each row pushed onto one array per column
 * (`prepare`, called at the first page, names the columns and compiles the pusher), a batch
 * cut at `maxRows` rows, about `maxBytes` bytes of source text, or with the first row of a
 * page that arrives after `maxAgeMs`, and carrying its last row's context (the page's `build`
 * applied to that row, so the contexts are the row-by-row read's) and its bytes of source
 * text as `size`.
 */
export async function* columnBatches<TRow, TContext>(
  pages: AsyncIterable<Page<TRow, ReadItem<TContext>>>,
  prepare: () => ColumnShape<TRow>,
  wire: WireReadOptions,
): AsyncGenerator<ReadItem<TContext>, void, undefined> {
  const maxRows = Math.max(1, Math.floor(wire.maxRows))
  const maxBytes = Math.max(1, Math.floor(wire.maxBytes))
  const maxAgeMs = wire.maxAgeMs ?? Number.POSITIVE_INFINITY
  let shape: ColumnShape<TRow> | undefined
  let columns: SqlValue[][] = []
  let rows = 0
  let bytes = 0
  let since = 0
  let last: TRow | undefined
  let build: ((row: TRow) => ReadItem<TContext>) | undefined
  const cut = (): ReadItem<TContext> => {
    const names = shape!.names
    const item: ReadItem<TContext> = {
      data: {
        kind: 'record',
        values: {},
        wire: {
          format: COLUMNS_WIRE,
          columns: names,
          rows,
          values: columns,
          ...(shape!.tags ? { tags: shape!.tags } : {}),
          size: bytes,
        },
      },
      context: build!(last as TRow).context,
    }
    columns = names.map((): SqlValue[] => [])
    rows = 0
    bytes = 0
    return item
  }
  for await (const page of pages) {
    if (!shape) {
      shape = prepare()
      columns = shape.names.map((): SqlValue[] => [])
    }
    const push = shape.push
    build = page.build
    const now = Date.now()
    if (rows === 0) since = now
    let late = now - since >= maxAgeMs
    for (const row of page.rows) {
      bytes += push(row, columns)
      rows++
      last = row
      if (late || rows >= maxRows || bytes >= maxBytes) {
        late = false
        since = now
        yield cut()
      }
    }
  }
  if (rows > 0) yield cut()
}
