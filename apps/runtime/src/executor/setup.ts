import {
  COLUMNS_WIRE,
  type ConnectInput,
  canCopyServerSide,
  retry,
  wireFormats,
} from '@nvisy/provider-core'
import { AckTracker, PartCounter } from './ack-tracker.js'
import { loadCheckpoints, onCommit } from './checkpoints.js'
import { type Converter, converterFor, IDENTITY } from './convert.js'
import { DEFAULTS } from './defaults.js'
import { resumeFromOffsets } from './offsets.js'
import { describeSources, prepareSinks } from './prepare-sinks.js'
import { BoundedQueue } from './queue.js'
import type {
  EdgeRuntime,
  Item,
  NodeRuntime,
  RunState,
  SinkRuntime,
  SourceRuntime,
} from './run-state.js'
import { Semaphore } from './semaphore.js'
import { nodeDataKind } from './validate.js'

/**
 * Everything before the first read: the node and edge runtimes, the stored checkpoints, a
 * connection per node, the sources' schemas, each edge's converter and server-side copy
 * plan, the sinks' destinations, and the offsets sinks hold.
 */
export async function setUpRun(run: RunState): Promise<void> {
  buildGraph(run)
  // Resume contexts first: a bad stored checkpoint fails before any connection opens.
  await loadCheckpoints(run)
  const inputs = await connectNodes(run)
  await describeSources(run)
  for (const edge of run.edges) {
    edge.converter = converterFor(edge.source.kind, edge.sink.kind, edge.sink.node.convert, {
      sourceNodeId: edge.source.node.id,
      primaryKey: edge.source.schema?.primaryKey,
    })!
  }
  planServerSideCopies(run, inputs)
  await prepareSinks(run)
  await planPassThrough(run)
  await resumeFromOffsets(run)
}

/** A runtime per node (validated streams, stats, a sink's semaphore, a source's tracker) and per edge (its queues). */
function buildGraph(run: RunState): void {
  const pipeline = run.pipeline
  for (const node of pipeline.nodes) {
    const provider = run.options.registry.get(node.provider)!
    const stream =
      node.role === 'source'
        ? provider.validateStream(structuredClone(node.stream))
        : provider.validateSinkStream(structuredClone(node.stream))
    const base: NodeRuntime = {
      node,
      provider,
      stream,
      kind: nodeDataKind(provider, node)!,
      stats: { items: 0, bytes: 0, failed: 0 },
    }
    run.nodes.set(node.id, base)
    if (node.role === 'sink') {
      run.sinks.set(
        node.id,
        Object.assign(base, {
          semaphore: new Semaphore(node.concurrency ?? DEFAULTS.concurrency),
        }) as SinkRuntime,
      )
    } else {
      const source = Object.assign(base, {
        edges: [],
        schema: undefined,
        tracker: undefined as unknown as AckTracker,
        wire: undefined,
        after: undefined,
        saved: undefined,
        lastSaveAt: Date.now(),
        sinceSave: 0,
        itemsRead: 0,
        saving: undefined,
        saveAgain: false,
      }) as SourceRuntime
      source.tracker = new AckTracker((n) => onCommit(run, source, n))
      run.sources.push(source)
    }
  }
  for (const sink of run.sinks.values()) {
    if (sink.node.deadLetter) sink.deadLetter = run.sinks.get(sink.node.deadLetter)
  }
  const queueCapacity = pipeline.options?.queueCapacity ?? DEFAULTS.queueCapacity
  for (const edge of pipeline.edges) {
    const source = run.sources.find((s) => s.node.id === edge.from)!
    const sink = run.sinks.get(edge.to)!
    const runtime: EdgeRuntime = {
      source,
      sink,
      // Set once the sources are described (a record -> message id uses the primary key).
      converter: undefined as unknown as Converter,
      items: undefined as unknown as BoundedQueue<Item>,
      batches: new BoundedQueue(queueCapacity),
      parts: new PartCounter((seq) => source.tracker.ack(seq)),
      offsetKey: undefined,
      skipUntil: undefined,
      skipped: 0,
      serverSideCopy: false,
      wire: undefined,
      waits: { sourceMs: 0, sinkMs: 0 },
    }
    // Bounded by count and by bytes (a few large documents do not queue 16 deep); a blob
    // copied server-side weighs one request, as in its batches.
    runtime.items = new BoundedQueue(DEFAULTS.itemBuffer, {
      max: sink.node.batch?.maxBytes ?? DEFAULTS.batchMaxBytes,
      sizeOf: (item) => (runtime.serverSideCopy ? DEFAULTS.copyRequestBytes : item.size),
    })
    source.edges.push(runtime)
    run.edges.push(runtime)
  }
}

/**
 * Open every node's connection (with retry). Returns each node's resolved input, kept only
 * until the edges are planned: server-side copies compare the two ends' inputs.
 */
async function connectNodes(run: RunState): Promise<Map<string, ConnectInput>> {
  const inputs = new Map<string, ConnectInput>()
  await Promise.all(
    [...run.nodes.values()].map(async (runtime) => {
      const input = await run.options.resolveConnection(runtime.node)
      inputs.set(runtime.node.id, input)
      runtime.connection = await retry(
        () =>
          runtime.provider.connect(input, {
            signal: run.signal,
            logger: run.logger.child?.({ nodeId: runtime.node.id }) ?? run.logger,
          }),
        run.retryOptions(runtime.node.id, 'connect'),
      )
    }),
  )
  return inputs
}

/**
 * A blob -> blob edge whose source and sink are one provider with deep-equal credentials at
 * one place (the provider's `serverSideCopy` decides) has its blobs copied inside the store:
 * the sink's writes get `serverSideCopy`, and the bodies are never opened unless the store
 * refuses a copy. Batching, checkpoints, retries and failures are the same as streamed.
 */
function planServerSideCopies(run: RunState, inputs: ReadonlyMap<string, ConnectInput>): void {
  for (const edge of run.edges) {
    const { source, sink } = edge
    if (source.kind !== 'blob' || sink.kind !== 'blob') continue
    const from = inputs.get(source.node.id)
    const to = inputs.get(sink.node.id)
    if (!from || !to) continue
    edge.serverSideCopy = canCopyServerSide(
      { provider: source.provider, input: from, stream: source.stream },
      { provider: sink.provider, input: to, stream: sink.stream },
    )
    if (edge.serverSideCopy)
      run.logger.info(
        { nodeId: sink.node.id, sourceNodeId: source.node.id },
        `sink ${sink.node.id}: copying objects server-side from source ${source.node.id} (same ${sink.provider.id} endpoint and credentials); bodies do not pass through the runtime`,
      )
  }
}

/**
 * Pass-through: a record -> record edge, the source's only one, without conversion, whose
 * source offers its rows in a batch format the sink accepts for these columns moves them a
 * batch per item: COPY text as the source read it when both ends have the same column types
 * (PostgreSQL -> PostgreSQL appends, never decoded), else values held by column
 * (`nvisy-columns`: decoded, but no object per row). Formats are tried in the source's order
 * of preference. Items are cut at the sink's batch limits (one item per batch; a text batch
 * without `maxItems` is bounded by bytes rather than rows). Checkpoints, offsets, retries and
 * refused rows work as row by row; `options.passThrough: false` turns it off. Decided after
 * `prepare`, when the destination's columns are known.
 */
async function planPassThrough(run: RunState): Promise<void> {
  if (run.pipeline.options?.passThrough === false) return
  for (const source of run.sources) {
    const edge = source.edges.length === 1 ? source.edges[0]! : undefined
    if (!edge || source.kind !== 'record' || edge.sink.kind !== 'record') continue
    if (edge.converter !== IDENTITY) continue
    const sink = edge.sink
    const accepted = wireFormats(sink.provider, 'sink')
    const reasons: string[] = []
    for (const format of wireFormats(source.provider, 'source')) {
      if (!accepted.includes(format)) continue
      const offer = await retry(
        () => source.connection!.wireOffer(source.stream, format, { signal: run.signal }),
        run.retryOptions(source.node.id, 'describe'),
      )
      if ('reason' in offer) {
        reasons.push(`${format}: ${offer.reason}`)
        continue
      }
      const answer = await retry(
        () => sink.connection!.acceptWire(sink.stream, offer, { signal: run.signal }),
        run.retryOptions(sink.node.id, 'prepare'),
      )
      if (!answer.accepted) {
        reasons.push(`${format}: ${answer.reason}`)
        continue
      }
      const limits = sink.node.batch ?? {}
      const columns = format === COLUMNS_WIRE
      edge.wire = format
      // Each item is a whole batch: buffer few of them (memory by bytes, not by items); a
      // deeper queue of whole batches adds memory, not overlap.
      edge.items = new BoundedQueue(DEFAULTS.wireItemBuffer)
      edge.batches = new BoundedQueue(
        Math.min(
          run.pipeline.options?.queueCapacity ?? DEFAULTS.queueCapacity,
          DEFAULTS.wireQueueCapacity,
        ),
      )
      source.wire = {
        format,
        maxRows: limits.maxItems ?? (columns ? DEFAULTS.batchMaxItems : DEFAULTS.wireMaxRows),
        maxBytes: limits.maxBytes ?? DEFAULTS.batchMaxBytes,
        maxAgeMs: limits.maxAgeMs ?? DEFAULTS.batchMaxAgeMs,
      }
      run.logger.info(
        {
          nodeId: sink.node.id,
          sourceNodeId: source.node.id,
          format,
          columns: offer.columns.length,
        },
        columns
          ? `sink ${sink.node.id}: rows from ${source.node.id} travel in batches by column (${format}), decoded but without an object per row${reasons.length > 0 ? ` (not ${reasons.join('; ')})` : ''}`
          : `sink ${sink.node.id}: rows from ${source.node.id} pass through as ${format} (the destination's columns take the source's text as it is); values are not decoded`,
      )
      break
    }
    if (edge.wire === undefined && reasons.length > 0)
      run.logger.info(
        { nodeId: sink.node.id, sourceNodeId: source.node.id, reasons },
        `sink ${sink.node.id}: rows from ${source.node.id} are decoded and encoded one by one (no pass-through: ${reasons.join('; ')})`,
      )
  }
}
