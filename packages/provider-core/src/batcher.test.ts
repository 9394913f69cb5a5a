import { afterEach, describe, expect, it, vi } from 'vitest'
import { batchStream, chunkBy, mapConcurrent } from './batcher.js'

afterEach(() => {
  vi.useRealTimers()
})

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

/** A source whose items the test pushes by hand; it records next() and return() calls. */
function manualSource<T>() {
  const queue: T[] = []
  const waiting: ((result: IteratorResult<T>) => void)[] = []
  let ended = false
  const source = {
    nextCalls: 0,
    returnCalls: 0,
    push(item: T) {
      const resolve = waiting.shift()
      if (resolve) resolve({ done: false, value: item })
      else queue.push(item)
    },
    end() {
      ended = true
      for (const resolve of waiting.splice(0)) resolve({ done: true, value: undefined })
    },
    get pendingReads() {
      return waiting.length
    },
    takeNowCalls: 0,
    /** An item already queued, or undefined (a bounded queue's synchronous take). */
    takeNow(): T | undefined {
      source.takeNowCalls++
      return queue.shift()
    },
    [Symbol.asyncIterator]() {
      return {
        next: (): Promise<IteratorResult<T>> => {
          source.nextCalls++
          if (queue.length > 0) return Promise.resolve({ done: false, value: queue.shift()! })
          if (ended) return Promise.resolve({ done: true, value: undefined })
          return new Promise((resolve) => waiting.push(resolve))
        },
        return: async (): Promise<IteratorResult<T>> => {
          source.returnCalls++
          ended = true
          return { done: true, value: undefined }
        },
      }
    },
  }
  return source
}

describe('batchStream', () => {
  it('closes batches at maxItems and finishes the partial batch at the end', async () => {
    const batches = await collect(batchStream(from([1, 2, 3, 4, 5, 6, 7]), { maxItems: 3 }))
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]])
  })

  it('yields nothing for an empty source', async () => {
    expect(await collect(batchStream(from([]), { maxItems: 3 }))).toEqual([])
  })

  it('closes batches at maxBytes, an oversized item travelling alone', async () => {
    const items = ['aa', 'bb', 'cc', 'x'.repeat(10), 'dd', 'e']
    const batches = await collect(
      batchStream(from(items), { maxItems: 100, maxBytes: 5, sizeOf: (s) => s.length }),
    )
    expect(batches).toEqual([['aa', 'bb'], ['cc'], ['x'.repeat(10)], ['dd', 'e']])
    for (const batch of batches) {
      const bytes = batch.reduce((n, s) => n + s.length, 0)
      if (batch.length > 1) expect(bytes).toBeLessThanOrEqual(5)
    }
    expect(batches.flat()).toEqual(items)
  })

  it('closes a batch exactly at maxBytes', async () => {
    const batches = await collect(
      batchStream(from([2, 3, 1, 4]), { maxBytes: 5, sizeOf: (n) => n }),
    )
    expect(batches).toEqual([
      [2, 3],
      [1, 4],
    ])
  })

  it('delivers a partial batch on age while the source is slow, losing and reordering nothing', async () => {
    vi.useFakeTimers()
    const source = manualSource<number>()
    const iterator = batchStream(source, { maxItems: 100, maxAgeMs: 1000 })
    source.push(1)
    source.push(2)
    const first = iterator.next()
    // Both items are taken, then a third read waits on the stalled source.
    await vi.advanceTimersByTimeAsync(999)
    expect(source.pendingReads).toBe(1)
    let settled = false
    void first.then(() => {
      settled = true
    })
    await vi.advanceTimersByTimeAsync(0)
    expect(settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await first).toEqual({ done: false, value: [1, 2] })
    // The pending read is carried over: the item it yields starts the next batch, no second read.
    const nextCallsBefore = source.nextCalls
    const second = iterator.next()
    source.push(3)
    source.push(4)
    source.end()
    expect(await second).toEqual({ done: false, value: [3, 4] })
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
    expect(source.nextCalls - nextCallsBefore).toBe(2)
  })

  it('with no age limit waits for the batch to fill', async () => {
    vi.useFakeTimers()
    const source = manualSource<number>()
    const iterator = batchStream(source, { maxItems: 2, maxAgeMs: Number.POSITIVE_INFINITY })
    source.push(1)
    const first = iterator.next()
    let settled = false
    void first.then(() => {
      settled = true
    })
    await vi.advanceTimersByTimeAsync(60_000)
    expect(settled).toBe(false)
    source.push(2)
    expect(await first).toEqual({ done: false, value: [1, 2] })
  })

  it('stops the source when the consumer breaks early', async () => {
    const source = manualSource<number>()
    for (let i = 0; i < 10; i++) source.push(i)
    const seen: number[][] = []
    for await (const batch of batchStream(source, { maxItems: 2 })) {
      seen.push(batch)
      break
    }
    expect(seen).toEqual([[0, 1]])
    expect(source.returnCalls).toBe(1)
  })

  it('stops a generator source when the consumer breaks early', async () => {
    let finallyRan = false
    async function* numbers() {
      try {
        for (let i = 0; ; i++) yield i
      } finally {
        finallyRan = true
      }
    }
    for await (const batch of batchStream(numbers(), { maxItems: 3 })) {
      expect(batch).toEqual([0, 1, 2])
      break
    }
    expect(finallyRan).toBe(true)
  })

  it('does not hang when the consumer breaks while a read of a stalled generator is pending', async () => {
    let finallyRan = false
    async function* stalled() {
      try {
        yield 1
        await new Promise(() => {})
      } finally {
        finallyRan = true
      }
    }
    const consume = async () => {
      for await (const batch of batchStream(stalled(), { maxItems: 10, maxAgeMs: 5 })) {
        expect(batch).toEqual([1])
        break
      }
      return 'finished'
    }
    const guard = new Promise((resolve) => setTimeout(resolve, 5000, 'hung'))
    expect(await Promise.race([consume(), guard])).toBe('finished')
    // The generator is still suspended in its pending read, so its finally cannot have run.
    expect(finallyRan).toBe(false)
  })

  it('calls return on the source when a pending read is abandoned', async () => {
    vi.useFakeTimers()
    const source = manualSource<number>()
    source.push(1)
    const iterator = batchStream(source, { maxItems: 10, maxAgeMs: 10 })
    const first = iterator.next()
    await vi.advanceTimersByTimeAsync(10)
    expect(await first).toEqual({ done: false, value: [1] })
    await iterator.return(undefined)
    expect(source.returnCalls).toBe(1)
  })

  it('rethrows a source error', async () => {
    async function* failing() {
      yield 1
      throw new Error('source broke')
    }
    await expect(collect(batchStream(failing(), { maxItems: 10 }))).rejects.toThrow('source broke')
  })

  it('rejects with an AbortError when aborted before or between batches, and stops the source', async () => {
    const aborted = new AbortController()
    aborted.abort()
    await expect(collect(batchStream(from([1]), { signal: aborted.signal }))).rejects.toMatchObject(
      { name: 'AbortError' },
    )

    const controller = new AbortController()
    const source = manualSource<number>()
    for (let i = 0; i < 10; i++) source.push(i)
    const iterator = batchStream(source, { maxItems: 2, signal: controller.signal })
    expect((await iterator.next()).value).toEqual([0, 1])
    controller.abort()
    await expect(iterator.next()).rejects.toMatchObject({ name: 'AbortError' })
    expect(source.returnCalls).toBe(1)
  })

  it('rejects at once when aborted while waiting on a stalled source', async () => {
    const controller = new AbortController()
    const source = manualSource<number>()
    const iterator = batchStream(source, { maxItems: 2, signal: controller.signal })
    const pending = iterator.next()
    await new Promise((resolve) => setTimeout(resolve, 1))
    controller.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    expect(source.returnCalls).toBe(1)
  })

  it('fills batches from takeNow without a read per buffered item, in order', async () => {
    const source = manualSource<number>()
    for (let i = 1; i <= 5; i++) source.push(i)
    source.end()
    const batches = await collect(
      batchStream(source, { maxItems: 3, takeNow: () => source.takeNow() }),
    )
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ])
    // Only the end of the stream is read through the iterator.
    expect(source.nextCalls).toBe(1)
  })

  it('with takeNow, a read left pending by the age limit is delivered before buffered items', async () => {
    const source = manualSource<number>()
    const iterator = batchStream(source, {
      maxItems: 10,
      maxAgeMs: 20,
      takeNow: () => source.takeNow(),
    })
    const first = iterator.next()
    await new Promise((resolve) => setTimeout(resolve, 1))
    source.push(1)
    expect((await first).value).toEqual([1])
    // The age limit closed [1] while a read was pending: 2 resolves it, 3 is buffered.
    source.push(2)
    source.push(3)
    source.end()
    expect((await iterator.next()).value).toEqual([2, 3])
    expect((await iterator.next()).done).toBe(true)
  })

  it('closes a batch from takeNow on bytes, an oversized item alone', async () => {
    const source = manualSource<string>()
    for (const item of ['aa', 'bb', 'cc', 'x'.repeat(10), 'd']) source.push(item)
    source.end()
    const batches = await collect(
      batchStream(source, {
        maxItems: 100,
        maxBytes: 5,
        sizeOf: (s) => s.length,
        takeNow: () => source.takeNow(),
      }),
    )
    expect(batches).toEqual([['aa', 'bb'], ['cc'], ['x'.repeat(10)], ['d']])
  })
})

describe('chunkBy', () => {
  it('splits by count', () => {
    expect(chunkBy([1, 2, 3, 4, 5], { maxItems: 2 })).toEqual([[1, 2], [3, 4], [5]])
    expect(chunkBy([], { maxItems: 2 })).toEqual([])
  })

  it('splits by bytes, an oversized item alone', () => {
    const sizeOf = (s: string) => s.length
    expect(
      chunkBy(['aa', 'bb', 'cccccc', 'd', 'e'], { maxItems: 10, maxBytes: 4, sizeOf }),
    ).toEqual([['aa', 'bb'], ['cccccc'], ['d', 'e']])
  })

  it('keeps every item in order', () => {
    const items = Array.from({ length: 57 }, (_, i) => i)
    const chunks = chunkBy(items, { maxItems: 7, maxBytes: 20, sizeOf: (n) => n % 5 })
    expect(chunks.flat()).toEqual(items)
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(7)
  })
})

describe('mapConcurrent', () => {
  it('keeps the input order and never exceeds the concurrency', async () => {
    let active = 0
    let peak = 0
    const items = Array.from({ length: 20 }, (_, i) => i)
    const results = await mapConcurrent(items, 3, async (item, index) => {
      active++
      peak = Math.max(peak, active)
      // Finish in reverse-ish order to prove results are placed by index.
      await new Promise((resolve) => setTimeout(resolve, (20 - item) % 4))
      active--
      return `${item}:${index}`
    })
    expect(results).toEqual(items.map((i) => `${i}:${i}`))
    expect(peak).toBeLessThanOrEqual(3)
    expect(peak).toBeGreaterThan(1)
  })

  it('handles empty input and a concurrency larger than the input', async () => {
    expect(await mapConcurrent([], 4, async (x) => x)).toEqual([])
    expect(await mapConcurrent([1, 2], 10, async (x) => x * 2)).toEqual([2, 4])
    expect(await mapConcurrent([1, 2], 0, async (x) => x * 2)).toEqual([2, 4])
  })

  it('rejects with the first error and starts no new items after it', async () => {
    const started: number[] = []
    const items = Array.from({ length: 10 }, (_, i) => i)
    const error = await mapConcurrent(items, 2, async (item) => {
      started.push(item)
      await new Promise((resolve) => setTimeout(resolve, 1))
      if (item === 1) throw new Error('item 1 failed')
      return item
    }).catch((e) => e)
    expect(error.message).toBe('item 1 failed')
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(started.length).toBeLessThanOrEqual(3)
  })
})
