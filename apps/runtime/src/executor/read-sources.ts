import {
  backoffDelay,
  canonicalJson,
  type Data,
  ProviderError,
  rowCount,
  sleep,
  toProviderError,
} from '@nvisy/provider-core'
import { BufferedBody, prepareBody, sizeOf } from './buffered-body.js'
import { isConversionFailure } from './convert.js'
import { itemFailed } from './failure-routing.js'
import type { Item, RunState, SourceRuntime } from './run-state.js'

/**
 * Read a source's stream; a retryable failure resumes after the last item read (with
 * backoff, at most the run's attempts in a row), so nothing is read twice.
 */
async function* readWithRetry(
  run: RunState,
  source: SourceRuntime,
): AsyncGenerator<{ data: Data; context: unknown }> {
  const connection = source.connection!
  let after = source.after
  let attempt = 0
  while (true) {
    try {
      const options = source.wire
        ? { after, signal: run.signal, wire: source.wire }
        : { after, signal: run.signal }
      for await (const item of connection.read(source.stream, options)) {
        attempt = 0
        after = item.context
        yield item
      }
      return
    } catch (raw) {
      if (run.signal.aborted) throw raw
      const error = toProviderError(raw)
      attempt++
      if (!error.retryable || attempt >= run.maxAttempts) throw error
      let delayMs = backoffDelay(attempt, run.options.retryBaseDelayMs ?? 200, 30_000)
      if (error.kind === 'rate_limited' && error.retryAfterMs !== undefined)
        delayMs = Math.max(delayMs, error.retryAfterMs)
      run.logger.warn(
        { nodeId: source.node.id, attempt, delayMs, err: error.toJSON() },
        'read failed, resuming after the last item',
      )
      await sleep(delayMs, run.signal)
    }
  }
}

/**
 * Read one source and hand every item to each of its edges: registered with the source's
 * acknowledgement tracker, skipped where the sink's offset is past it, converted to the
 * sink's kind (a failed conversion is routed as a failed item), then queued for batching.
 * Closes the edges' item queues at the end.
 */
export async function readSource(run: RunState, source: SourceRuntime): Promise<void> {
  const fanOut = source.edges.length
  for await (const item of readWithRetry(run, source)) {
    const data = prepareBody(source.provider.id, item.data, fanOut)
    const size = sizeOf(data)
    // A pass-through item stands for its rows.
    source.stats.items += rowCount(data)
    source.itemsRead++
    // A blob body not read yet counts its declared size in progress, not the batching guess.
    source.stats.bytes +=
      data.kind === 'blob' && data.body instanceof BufferedBody ? (data.size ?? 0) : size
    const seq = source.tracker.register(item.context, fanOut)
    for (const edge of source.edges) {
      if (edge.skipUntil !== undefined) {
        // The sink committed this item with an earlier run's batch: acknowledge, do not write.
        edge.skipped++
        if (canonicalJson(item.context) === edge.skipUntil) {
          edge.skipUntil = undefined
          run.logger.info(
            { nodeId: source.node.id, sinkNodeId: edge.sink.node.id, skipped: edge.skipped },
            'reached the offset the sink holds; writing from here',
          )
        }
        source.tracker.ack(seq)
        continue
      }
      const converter = edge.converter
      if (!converter.many) {
        const converted = converter.convert(data, item.context)
        if (isConversionFailure(converted)) {
          await itemFailed(run, edge.sink, data, undefined, converted.error, converted.item)
          source.tracker.ack(seq)
          continue
        }
        const next: Item = {
          seq,
          data: converted,
          size: converted === data ? size : sizeOf(converted),
          part: false,
          context: item.context,
        }
        if (!edge.items.offer(next)) {
          // The queue is full: the sink is the slower side. Timed only here, off the fast path.
          const since = performance.now()
          await edge.items.push(next)
          edge.waits.sourceMs += performance.now() - since
        }
        continue
      }
      for await (const converted of converter.convert(data, item.context)) {
        if (isConversionFailure(converted)) {
          await itemFailed(run, edge.sink, data, undefined, converted.error, converted.item)
          continue
        }
        edge.parts.add(seq)
        await edge.items.push({
          seq,
          data: converted,
          size: sizeOf(converted),
          part: true,
          context: item.context,
        })
      }
      edge.parts.seal(seq)
    }
  }
  for (const edge of source.edges) {
    if (edge.skipUntil !== undefined && !run.signal.aborted)
      throw new ProviderError({
        kind: 'internal',
        providerId: source.provider.id,
        message: `source node ${source.node.id} ended without reaching the offset sink node ${edge.sink.node.id} committed under ${JSON.stringify(edge.offsetKey)} (skipped ${edge.skipped} items): the sink holds items this read did not yield, so the run stops instead of writing past them; check that the source stream is the one the sink was filled from, or run without resume`,
      })
  }
  for (const edge of source.edges) edge.items.close()
}
