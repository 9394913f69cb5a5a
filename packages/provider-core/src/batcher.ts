import { abortReason, raceAbort } from './abort.js'

export interface BatchLimits {
  /** Close a batch at this many items. Default 1000. */
  maxItems?: number
  /** Close a batch once its items add up to this many bytes (by `sizeOf`). Default 8 MiB. */
  maxBytes?: number
  /** Close a non-empty batch this long after its first item arrived. Default 1000 ms. */
  maxAgeMs?: number
}

export interface BatchOptions<T> extends BatchLimits {
  sizeOf?: (item: T) => number
  signal?: AbortSignal | undefined
  /**
   * Take an item the source already holds, synchronously, or undefined when it holds none
   * (e.g. a bounded queue's `takeNow`). Buffered items then fill a batch without a promise
   * per item; an empty buffer is waited on through the iterator as usual. Never called while
   * a read is pending, so the order is the source's.
   */
  takeNow?: () => T | undefined
}

const TIMEOUT = Symbol('timeout')

/**
 * Group an async stream into batches that close on item count, byte size or age, whichever
 * comes first. An item larger than `maxBytes` travels alone. A slow source still has its
 * partial batch delivered once it is `maxAgeMs` old: the pending read is raced against the
 * deadline, and kept for the next batch, so no item is lost or reordered.
 */
export async function* batchStream<T>(
  source: AsyncIterable<T>,
  options: BatchOptions<T> = {},
): AsyncGenerator<T[]> {
  const maxItems = Math.max(1, options.maxItems ?? 1000)
  const maxBytes = Math.max(1, options.maxBytes ?? 8 * 1024 * 1024)
  const maxAgeMs = options.maxAgeMs ?? 1000
  const sizeOf = options.sizeOf
  const signal = options.signal
  const takeNow = options.takeNow
  const iterator = source[Symbol.asyncIterator]()
  let pending: Promise<IteratorResult<T>> | undefined
  let batch: T[] = []
  let bytes = 0
  let deadline = 0
  let finished = false
  // One timer per batch, not per read: every read of a batch races the same deadline.
  let timer: NodeJS.Timeout | undefined
  let timeout: Promise<typeof TIMEOUT> | undefined
  const stopTimer = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    timeout = undefined
  }
  try {
    while (true) {
      if (signal?.aborted) throw abortReason(signal)
      let result: IteratorResult<T> | typeof TIMEOUT
      const now = pending === undefined && takeNow ? takeNow() : undefined
      if (now !== undefined) {
        result = { done: false, value: now }
      } else if (batch.length === 0 || !Number.isFinite(maxAgeMs)) {
        pending ??= iterator.next()
        // Raced per read (a listener added and removed each time), so a read waiting on a
        // stalled source ends at once on abort and nothing accumulates on a long-lived promise.
        result = await raceAbort(pending, signal)
      } else {
        pending ??= iterator.next()
        if (timeout === undefined) {
          const wait = deadline - Date.now()
          timeout =
            wait <= 0
              ? Promise.resolve(TIMEOUT)
              : new Promise<typeof TIMEOUT>((resolve) => {
                  timer = setTimeout(resolve, wait, TIMEOUT)
                })
        }
        result = await raceAbort(Promise.race([pending, timeout]), signal)
      }
      if (result === TIMEOUT) {
        stopTimer()
        yield batch
        batch = []
        bytes = 0
        continue
      }
      pending = undefined
      if (result.done) {
        finished = true
        break
      }
      const item = result.value
      const size = sizeOf ? sizeOf(item) : 0
      if (batch.length > 0 && sizeOf && bytes + size > maxBytes) {
        stopTimer()
        yield batch
        batch = []
        bytes = 0
      }
      if (batch.length === 0) deadline = Date.now() + maxAgeMs
      batch.push(item)
      bytes += size
      if (batch.length >= maxItems || (sizeOf && bytes >= maxBytes)) {
        stopTimer()
        yield batch
        batch = []
        bytes = 0
      }
    }
    stopTimer()
    if (batch.length > 0) yield batch
  } finally {
    stopTimer()
    if (!finished) {
      if (pending) {
        // A read is still in flight. An async generator queues return() behind it, so
        // awaiting here would hang on a stalled source: ask it to stop and move on.
        pending.catch(() => {})
        try {
          iterator.return?.()?.catch?.(() => {})
        } catch {}
      } else {
        await iterator.return?.()
      }
    }
  }
}

/** Split an array into chunks by count and by byte size (for a service's request limits). */
export function chunkBy<T>(
  items: readonly T[],
  limits: { maxItems: number; maxBytes?: number; sizeOf?: (item: T) => number },
): T[][] {
  const chunks: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = limits.sizeOf ? limits.sizeOf(item) : 0
    if (
      current.length > 0 &&
      (current.length >= limits.maxItems ||
        (limits.maxBytes !== undefined && bytes + size > limits.maxBytes))
    ) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

/** Run `fn` over items with at most `concurrency` in flight; results keep the input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failed = false
  const workers = Array.from(
    { length: Math.max(1, Math.min(concurrency, items.length)) },
    async () => {
      // After a failure the call has already rejected: start no further items.
      while (next < items.length && !failed) {
        const index = next++
        try {
          results[index] = await fn(items[index]!, index)
        } catch (error) {
          failed = true
          throw error
        }
      }
    },
  )
  await Promise.all(workers)
  return results
}
