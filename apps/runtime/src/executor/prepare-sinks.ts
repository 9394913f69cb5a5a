import {
  type DataKind,
  ProviderError,
  retry,
  type StreamSchema,
  toProviderError,
} from '@nvisy/provider-core'
import type { PipelineNode } from '../pipeline-types.js'
import { convertOptions, declaredSchema } from './convert.js'
import type { RunState } from './run-state.js'

/**
 * Whether a record source must describe its stream for this sink: a sink that prepares its
 * destination from it, or a record -> message edge whose message id comes from the primary key.
 */
export function needsSourceSchema(
  sinkKind: DataKind,
  sinkCapabilities: { prepare?: boolean | undefined },
  sinkNode: PipelineNode,
): boolean {
  if (sinkCapabilities.prepare) return true
  return sinkKind === 'message' && !convertOptions(sinkNode.convert)?.key
}

/**
 * The schema of what flows into a sink, for its `prepare`: a record source's described
 * columns on a record -> record edge, or the sink's declared columns (document -> record).
 */
export function sinkSchema(
  sink: { node: PipelineNode; kind: DataKind },
  edges: readonly {
    source: { kind: DataKind; schema?: StreamSchema | undefined }
    sink: unknown
  }[],
): StreamSchema | undefined {
  const declared = declaredSchema(convertOptions(sink.node.convert))
  if (declared && sink.kind === 'record') return declared
  for (const edge of edges) {
    if (edge.sink !== sink) continue
    // Rows become documents field by field, so a record source's columns (and its key) are
    // the documents' too: a document sink keys or indexes its destination by them.
    if (
      edge.source.kind === 'record' &&
      (sink.kind === 'record' || sink.kind === 'document') &&
      edge.source.schema
    )
      return edge.source.schema
  }
  return undefined
}

/** Describe the sources whose columns a sink's `prepare` or a record -> message id needs. */
export async function describeSources(run: RunState): Promise<void> {
  await Promise.all(
    run.sources.map(async (source) => {
      if (!source.provider.capabilities.describeStream || source.kind !== 'record') return
      const needed = source.edges.some((edge) =>
        needsSourceSchema(edge.sink.kind, edge.sink.provider.capabilities, edge.sink.node),
      )
      if (!needed) return
      try {
        source.schema = await retry(
          () => source.connection!.describeStream(source.stream, { signal: run.signal }),
          run.retryOptions(source.node.id, 'describe'),
        )
      } catch (error) {
        const cause = toProviderError(error)
        throw new ProviderError({
          kind: cause.kind,
          providerId: source.provider.id,
          operation: 'describe',
          message: `describing the stream of source node ${source.node.id} failed: ${cause.message}`,
          cause,
        })
      }
    }),
  )
}

/**
 * Create, evolve or check each sink's destination before anything is read (sinks whose
 * provider declares `prepare`), from the schema of what flows into it.
 */
export async function prepareSinks(run: RunState): Promise<void> {
  const schemas = new Map<string, StreamSchema | undefined>()
  for (const sink of run.sinks.values()) {
    if (!run.edges.some((e) => e.sink === sink)) continue
    schemas.set(sink.node.id, sinkSchema(sink, run.edges))
  }
  // A dead-letter sink of the same kind gets the schema of the sink it serves.
  for (const sink of run.sinks.values()) {
    const dead = sink.deadLetter
    if (dead && dead.kind === sink.kind && !schemas.get(dead.node.id))
      schemas.set(dead.node.id, schemas.get(sink.node.id))
  }
  for (const sink of run.sinks.values()) {
    if (!sink.provider.capabilities.prepare) continue
    const schema = schemas.get(sink.node.id)
    let result: { existed: boolean; actions: string[] }
    try {
      result = await retry(
        () =>
          sink.connection!.prepare(sink.stream, {
            signal: run.signal,
            ...(schema ? { schema } : {}),
          }),
        run.retryOptions(sink.node.id, 'prepare'),
      )
    } catch (error) {
      const cause = toProviderError(error)
      throw new ProviderError({
        kind: cause.kind,
        providerId: sink.provider.id,
        operation: 'prepare',
        message: `preparing the destination of sink node ${sink.node.id} failed: ${cause.message}`,
        cause,
      })
    }
    if (result.actions.length > 0)
      run.logger.info(
        { nodeId: sink.node.id, existed: result.existed, actions: result.actions },
        `sink ${sink.node.id}: ${result.existed ? 'destination evolved' : 'destination created'}`,
      )
    run.emit({
      type: 'prepared',
      nodeId: sink.node.id,
      existed: result.existed,
      actions: result.actions,
    })
  }
}
