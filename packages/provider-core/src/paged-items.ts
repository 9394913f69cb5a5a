import { abortReason } from './abort.js'

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
