import { batchStream, raceAbort, retry } from '@nvisy/provider-core'
import { BufferedBody } from './buffered-body.js'
import { DEFAULTS } from './defaults.js'
import { itemFailed } from './failure-routing.js'
import type { EdgeRuntime, RunState } from './run-state.js'

/**
 * Group an edge's items into batches (core's `batchStream`: closed on item count, bytes or
 * age, an item larger than `maxBytes` alone) and queue them for the edge's writers. Items
 * already buffered are taken without waiting (`takeNow`: no promise per item). An abort
 * reaches this loop through the queues: the run fails `edge.items` and `edge.batches`.
 */
export async function batchEdge(edge: EdgeRuntime): Promise<void> {
  const limits = edge.sink.node.batch ?? {}
  const queue = edge.items
  const batches = batchStream(queue, {
    // A pass-through item already holds a batch of rows (cut by the source at these limits).
    maxItems: edge.wire ? 1 : (limits.maxItems ?? DEFAULTS.batchMaxItems),
    maxBytes: limits.maxBytes ?? DEFAULTS.batchMaxBytes,
    maxAgeMs: limits.maxAgeMs ?? DEFAULTS.batchMaxAgeMs,
    // A blob copied inside the store moves no bytes through here: it weighs a request.
    sizeOf: edge.serverSideCopy ? () => DEFAULTS.copyRequestBytes : (item) => item.size,
    takeNow: () => queue.takeNow(),
  })
  for await (const batch of batches) await edge.batches.push(batch)
  edge.batches.close()
}

/**
 * One writer of an edge (a sink node runs `concurrency` of them, sharing its semaphore with
 * its dead-letter writes): write each batch with retry, count what was written, route each
 * item the sink refused, then acknowledge the batch's items to the source.
 */
export async function writeEdge(run: RunState, edge: EdgeRuntime): Promise<void> {
  const sink = edge.sink
  const connection = sink.connection!
  const batches = edge.batches[Symbol.asyncIterator]()
  for (;;) {
    // Time without a batch to write: the source (or the batcher's age limit) is the slower side.
    const since = performance.now()
    const next = await batches.next()
    edge.waits.sinkMs += performance.now() - since
    if (next.done) break
    const batch = next.value
    await sink.semaphore.acquire(run.signal)
    try {
      const data = batch.map((item) => item.data)
      const options =
        edge.offsetKey === undefined
          ? { signal: run.signal, serverSideCopy: edge.serverSideCopy, wire: edge.wire }
          : {
              signal: run.signal,
              serverSideCopy: edge.serverSideCopy,
              wire: edge.wire,
              offset: { key: edge.offsetKey, context: batch[batch.length - 1]!.context },
            }
      const result = await retry(
        () => raceAbort(connection.write(sink.stream, data, options), run.signal),
        run.retryOptions(sink.node.id, 'write'),
      )
      // A refused row of a pass-through item fails alone (`data`): the item's bytes still count.
      const failedIndexes = new Set(
        result.failed.filter((f) => f.data === undefined).map((f) => f.index),
      )
      sink.stats.items += result.written
      for (let index = 0; index < data.length; index++) {
        if (failedIndexes.has(index)) continue
        const item = data[index]!
        // A buffered blob body has been read by the write: count its real length.
        sink.stats.bytes +=
          item.kind === 'blob' && item.body instanceof BufferedBody
            ? (item.body.size ?? item.size ?? 0)
            : batch[index]!.size
      }
      for (const failure of result.failed) {
        await itemFailed(
          run,
          sink,
          failure.data ?? data[failure.index]!,
          failure.index,
          failure.error,
        )
      }
    } finally {
      sink.semaphore.release()
    }
    const tracker = edge.source.tracker
    for (const item of batch) {
      if (item.part) edge.parts.ack(item.seq)
      else tracker.ack(item.seq)
    }
  }
}
