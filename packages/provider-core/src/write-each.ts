import { setMaxListeners } from 'node:events'
import { mapConcurrent } from './batcher.js'
import type { WriteFailure, WriteResult } from './contract.js'
import { ProviderError } from './errors.js'

/**
 * Write a batch item by item, `concurrency` at a time, for sinks whose service takes one
 * item per request (an object store). `write` resolves `undefined` when the item is
 * written, or a `data` ProviderError for an item that fails alone; anything it throws
 * fails the whole batch (the runtime retries it) and aborts the writes still in flight
 * through the signal it was given. Failures come back sorted by index.
 */
export async function writeEachConcurrently<T>(
  batch: readonly T[],
  options: { concurrency: number; signal: AbortSignal },
  write: (item: T, index: number, signal: AbortSignal) => Promise<ProviderError | undefined>,
): Promise<WriteResult> {
  const failed: WriteFailure[] = []
  let written = 0
  const stop = new AbortController()
  // One listener per item in flight, on top of the caller's: not a leak.
  setMaxListeners(options.concurrency + 10, stop.signal)
  const onAbort = () => stop.abort(options.signal.reason)
  if (options.signal.aborted) onAbort()
  else options.signal.addEventListener('abort', onAbort, { once: true })
  try {
    await mapConcurrent(batch, options.concurrency, async (item, index) => {
      if (stop.signal.aborted) return
      try {
        const failure = await write(item, index, stop.signal)
        if (failure) failed.push({ index, error: failure })
        else written++
      } catch (error) {
        stop.abort(error)
        throw error
      }
    })
    if (options.signal.aborted) throw options.signal.reason
  } finally {
    options.signal.removeEventListener('abort', onAbort)
  }
  failed.sort((a, b) => a.index - b.index)
  return { written, failed }
}

/** A `data` failure for one item, naming it. */
export function itemDataError(what: string, message: string, cause?: unknown): ProviderError {
  return new ProviderError({ kind: 'data', message: `${what}: ${message}`, cause })
}
