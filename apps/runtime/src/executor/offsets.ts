import { canonicalJson, ProviderError, retry } from '@nvisy/provider-core'
import { DEFAULTS } from './defaults.js'
import type { EdgeRuntime, RunState } from './run-state.js'

/**
 * Exactly-once appends: on each edge whose sink commits offsets (with concurrency 1 and a
 * one-to-one conversion) every batch carries the context of its last source item, and a
 * resumed run starts from what the sink holds rather than from the runtime's checkpoint
 * (which may lag: it is saved after the sink commits).
 */
export async function resumeFromOffsets(run: RunState): Promise<void> {
  for (const edge of run.edges) {
    const sink = edge.sink
    if (!sink.provider.capabilities.offsets) continue
    const concurrency = sink.node.concurrency ?? DEFAULTS.concurrency
    if (concurrency !== 1 || edge.converter.many) {
      // Offsets commit the last context of each batch in source order: with batches written
      // concurrently, or several items per source item, a committed offset could pass an
      // uncommitted batch, so they are off and a resumed append may write a batch again.
      const why =
        concurrency !== 1
          ? `concurrency ${concurrency} (offsets need 1)`
          : `the conversion ${edge.source.kind} -> ${sink.kind} yields several items per source item`
      run.logger.warn(
        { nodeId: sink.node.id, sourceNodeId: edge.source.node.id },
        `sink ${sink.node.id}: exactly-once offsets are off because of ${why}; after a crash a resumed run may write the last unacknowledged batches again (an upsert mode makes that harmless)`,
      )
      continue
    }
    edge.offsetKey = `${run.pipeline.id}/${edge.source.node.id}/${sink.node.id}`
  }
  if (run.options.resume === false) return
  for (const source of run.sources) {
    const stored = new Map<EdgeRuntime, unknown>()
    for (const edge of source.edges) {
      if (edge.offsetKey === undefined) continue
      const key = edge.offsetKey
      const offset = await retry(
        () => edge.sink.connection!.readOffset(edge.sink.stream, key, { signal: run.signal }),
        run.retryOptions(edge.sink.node.id, 'readOffset'),
      )
      if (offset === undefined || offset === null) continue
      try {
        stored.set(edge, source.provider.validateContext(structuredClone(offset)))
      } catch (error) {
        throw new ProviderError({
          kind: 'config',
          providerId: edge.sink.provider.id,
          message: `the offset sink node ${edge.sink.node.id} holds under ${JSON.stringify(key)} is no resume context of source node ${source.node.id} (provider ${source.provider.id}): ${(error as Error).message}`,
          cause: error,
        })
      }
    }
    if (stored.size === 0) continue
    const only = source.edges.length === 1 ? source.edges[0]! : undefined
    if (only && stored.has(only)) {
      // The sink's offset is at least as far as the checkpoint: start after it.
      source.after = stored.get(only)
      run.logger.info(
        { nodeId: source.node.id, sinkNodeId: only.sink.node.id },
        "resuming after the sink's committed offset",
      )
      continue
    }
    const from = source.after === undefined ? undefined : canonicalJson(source.after)
    for (const [edge, offset] of stored) {
      const at = canonicalJson(offset)
      if (at === from) continue
      edge.skipUntil = at
      run.logger.info(
        { nodeId: source.node.id, sinkNodeId: edge.sink.node.id },
        'sink is ahead of the checkpoint: skipping the items it already holds',
      )
    }
  }
}
