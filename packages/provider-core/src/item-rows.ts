/**
 * The rows of several items numbered end to end, as a sink writing one batch of
 * `nvisy-columns` items addresses them: batch row `r` is row `r - start(i)` of item
 * `i = locate(r)`. An item of no rows takes no number, so `locate` never names one.
 */
export class ItemRows {
  /** How many rows the items hold together. */
  readonly count: number
  // First batch row of each item, non-decreasing (equal for an item of no rows).
  readonly #starts: number[]

  constructor(items: Iterable<{ readonly rows: number }>) {
    const starts: number[] = []
    let count = 0
    for (const item of items) {
      starts.push(count)
      count += item.rows
    }
    this.#starts = starts
    this.count = count
  }

  /** The batch row of row 0 of item `i`. */
  start(i: number): number {
    return this.#starts[i]!
  }

  /**
   * The item that batch row `r` (0 <= r < count) belongs to: the last one starting at or
   * before it, which skips items of no rows. A binary search: a sink may locate every
   * cell of a batch of many items.
   */
  locate(r: number): number {
    let low = 0
    let high = this.#starts.length - 1
    while (low < high) {
      const mid = (low + high + 1) >> 1
      if (this.#starts[mid]! <= r) low = mid
      else high = mid - 1
    }
    return low
  }
}
