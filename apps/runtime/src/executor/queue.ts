/**
 * A bounded async queue: `push` waits while the queue is full, so a slow consumer slows the
 * producer (backpressure) and memory stays bounded by the capacity: a number of items and,
 * when `bytes` is given, their total size (an item larger than the bound still goes through
 * alone, into an empty queue). One producer side, any
 * number of consumers; `close()` ends the stream after the buffered items, `fail(error)` ends
 * it at once with that error for every waiting party.
 */
export class BoundedQueue<T> implements AsyncIterable<T> {
  readonly #capacity: number
  readonly #maxBytes: number
  readonly #sizeOf: ((item: T) => number) | undefined
  #bytes = 0
  readonly #items: T[] = []
  #takers: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void }[] = []
  #putters: { resolve: () => void; reject: (error: unknown) => void }[] = []
  #closed = false
  #error: unknown
  #failed = false

  constructor(capacity: number, bytes?: { max: number; sizeOf: (item: T) => number }) {
    this.#capacity = Math.max(1, capacity)
    this.#maxBytes = bytes ? Math.max(1, bytes.max) : Number.POSITIVE_INFINITY
    this.#sizeOf = bytes?.sizeOf
  }

  /** The buffered items' total size (0 without a bytes bound). */
  get bytes(): number {
    return this.#bytes
  }

  #hasRoom(): boolean {
    const count = this.#items.length
    return count === 0 || (count < this.#capacity && this.#bytes < this.#maxBytes)
  }

  #add(item: T): void {
    this.#items.push(item)
    if (this.#sizeOf) this.#bytes += this.#sizeOf(item)
  }

  #take(): T {
    const value = this.#items.shift() as T
    if (this.#sizeOf) this.#bytes = this.#items.length === 0 ? 0 : this.#bytes - this.#sizeOf(value)
    return value
  }

  get size(): number {
    return this.#items.length
  }

  /** Add an item; resolves once there is room for it. Rejects when the queue failed. */
  async push(item: T): Promise<void> {
    while (true) {
      if (this.#failed) throw this.#error
      if (this.#closed) throw new Error('push on a closed queue')
      const taker = this.#takers.shift()
      if (taker) {
        taker.resolve({ done: false, value: item })
        return
      }
      if (this.#hasRoom()) {
        this.#add(item)
        return
      }
      await new Promise<void>((resolve, reject) => this.#putters.push({ resolve, reject }))
    }
  }

  /**
   * Add an item now if there is room (or a consumer waiting): true when it was taken. The
   * per-item fast path of a producer: no promise when the queue is not full.
   */
  offer(item: T): boolean {
    if (this.#failed) throw this.#error
    if (this.#closed) throw new Error('push on a closed queue')
    const taker = this.#takers.shift()
    if (taker) {
      taker.resolve({ done: false, value: item })
      return true
    }
    if (this.#hasRoom()) {
      this.#add(item)
      return true
    }
    return false
  }

  /**
   * Take a buffered item now, or undefined when none is buffered. Only for a single
   * consumer with no `next()` pending (a pending `next()` gets the next item first).
   */
  takeNow(): T | undefined {
    if (this.#failed) throw this.#error
    if (this.#items.length === 0) return undefined
    const value = this.#take()
    this.#putters.shift()?.resolve()
    return value
  }

  /** Closed and every buffered item taken: nothing more will come. */
  get drained(): boolean {
    return this.#closed && this.#items.length === 0
  }

  /** No more items: consumers finish once the buffer is drained. */
  close(): void {
    if (this.#closed || this.#failed) return
    this.#closed = true
    if (this.#items.length === 0) {
      for (const taker of this.#takers.splice(0)) taker.resolve({ done: true, value: undefined })
    }
  }

  /** End the queue with an error: waiting producers and consumers reject with it. */
  fail(error: unknown): void {
    if (this.#failed) return
    this.#failed = true
    this.#error = error
    this.#items.length = 0
    this.#bytes = 0
    for (const taker of this.#takers.splice(0)) taker.reject(error)
    for (const putter of this.#putters.splice(0)) putter.reject(error)
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#failed) return Promise.reject(this.#error)
    if (this.#items.length > 0) {
      const value = this.#take()
      this.#putters.shift()?.resolve()
      if (this.#closed && this.#items.length === 0) {
        for (const taker of this.#takers.splice(0)) taker.resolve({ done: true, value: undefined })
      }
      return Promise.resolve({ done: false, value })
    }
    if (this.#closed) return Promise.resolve({ done: true, value: undefined })
    // Wake a producer waiting on a full queue of capacity 0 semantics (handoff).
    this.#putters.shift()?.resolve()
    return new Promise((resolve, reject) => this.#takers.push({ resolve, reject }))
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      // Breaking out of a for-await must not close the queue for other consumers.
      return: async () => ({ done: true, value: undefined }),
    }
  }
}
