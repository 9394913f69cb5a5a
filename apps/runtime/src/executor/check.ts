import {
  type GuardedConnection,
  type Logger,
  type StreamSchema,
  silentLogger,
  toProviderError,
  type ValidationIssue,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import { needsSourceSchema, sinkSchema } from './execute.js'
import type { ProviderRegistry } from './types.js'
import { nodeDataKind, validatePipeline } from './validate.js'

export interface CheckPipelineOptions {
  pipeline: unknown
  registry: ProviderRegistry
  /** Turn a node's connection spec into the provider's input (as for a run). */
  resolveConnection(node: PipelineNode): Promise<{ credentials: unknown; params: unknown }>
  signal: AbortSignal
  logger?: Logger
}

/**
 * Check a pipeline against the systems it names without changing anything: the offline
 * validation first (its issues alone when there are any), then every node connects and runs
 * `check()`, record sources describe their stream where a sink needs it, and every sink that
 * can prepare its destination does a dry run with the schema a run would give it. Returns the
 * issues, each with a JSON pointer to the node (`/nodes/<i>/connection` for a connect or
 * check failure, `/nodes/<i>/stream` for describe and prepare) and the error kind as its rule
 * (`auth`, `not_found`, `config`, ...); none means a run would start.
 */
export async function checkPipeline(options: CheckPipelineOptions): Promise<ValidationIssue[]> {
  const offline = validatePipeline(options.pipeline, options.registry)
  if (offline.length > 0) return offline
  const pipeline = options.pipeline as Pipeline
  const logger = options.logger ?? silentLogger
  const issues: ValidationIssue[] = []
  const at = (id: string) => pipeline.nodes.findIndex((n) => n.id === id)
  const report = (nodeId: string, where: string, doing: string, error: unknown) => {
    const failure = toProviderError(error)
    issues.push({
      path: `/nodes/${at(nodeId)}/${where}`,
      rule: failure.kind,
      message: `node ${nodeId}: ${doing} failed: ${failure.message}`,
    })
  }
  interface Checked {
    node: PipelineNode
    kind: ReturnType<typeof nodeDataKind> & string
    stream: unknown
    connection?: GuardedConnection
    schema?: StreamSchema
  }
  const nodes = new Map<string, Checked>()
  for (const node of pipeline.nodes) {
    const provider = options.registry.get(node.provider)!
    nodes.set(node.id, {
      node,
      kind: nodeDataKind(provider, node)!,
      stream:
        node.role === 'source'
          ? provider.validateStream(structuredClone(node.stream))
          : provider.validateSinkStream(structuredClone(node.stream)),
    })
  }
  try {
    await Promise.all(
      [...nodes.values()].map(async (checked) => {
        const { node } = checked
        const provider = options.registry.get(node.provider)!
        try {
          const input = await options.resolveConnection(node)
          checked.connection = await provider.connect(input, {
            signal: options.signal,
            logger: logger.child?.({ nodeId: node.id }) ?? logger,
          })
        } catch (error) {
          report(node.id, 'connection', 'connect', error)
          return
        }
        try {
          await checked.connection.check()
        } catch (error) {
          report(node.id, 'connection', 'check', error)
          const failed = checked.connection
          checked.connection = undefined
          await failed.close().catch(() => {})
        }
      }),
    )
    const edges = pipeline.edges.map((edge) => ({
      source: nodes.get(edge.from)!,
      sink: nodes.get(edge.to)!,
    }))
    for (const source of nodes.values()) {
      const provider = options.registry.get(source.node.provider)!
      if (source.node.role !== 'source' || !source.connection) continue
      if (!provider.capabilities.describeStream || source.kind !== 'record') continue
      const needed = edges.some(
        (e) =>
          e.source === source &&
          needsSourceSchema(
            e.sink.kind,
            options.registry.get(e.sink.node.provider)!.capabilities,
            e.sink.node,
          ),
      )
      if (!needed) continue
      try {
        source.schema = await source.connection.describeStream(source.stream, {
          signal: options.signal,
        })
      } catch (error) {
        report(source.node.id, 'stream', 'describe', error)
      }
    }
    const schemas = new Map<string, StreamSchema | undefined>()
    for (const sink of nodes.values()) {
      if (sink.node.role === 'sink' && edges.some((e) => e.sink === sink))
        schemas.set(sink.node.id, sinkSchema(sink, edges))
    }
    for (const sink of nodes.values()) {
      const dead = sink.node.deadLetter ? nodes.get(sink.node.deadLetter) : undefined
      if (dead && dead.kind === sink.kind && !schemas.get(dead.node.id))
        schemas.set(dead.node.id, schemas.get(sink.node.id))
    }
    for (const sink of nodes.values()) {
      if (sink.node.role !== 'sink' || !sink.connection) continue
      if (!options.registry.get(sink.node.provider)!.capabilities.prepare) continue
      const schema = schemas.get(sink.node.id)
      try {
        const result = await sink.connection.prepare(sink.stream, {
          signal: options.signal,
          dryRun: true,
          ...(schema ? { schema } : {}),
        })
        if (result.actions.length > 0)
          logger.info(
            { nodeId: sink.node.id, actions: result.actions },
            `sink ${sink.node.id}: a run would ${result.existed ? 'evolve' : 'create'} the destination`,
          )
      } catch (error) {
        report(sink.node.id, 'stream', 'prepare', error)
      }
    }
  } finally {
    await Promise.all(
      [...nodes.values()].map((n) =>
        n.connection
          ?.close()
          .catch((error) =>
            logger.warn(
              { err: toProviderError(error).toJSON(), nodeId: n.node.id },
              'close failed',
            ),
          ),
      ),
    )
  }
  return issues
}
