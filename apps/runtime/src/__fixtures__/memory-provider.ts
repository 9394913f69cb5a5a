// An in-memory provider for executor tests, with hooks to make reads and writes slow or fail.
import {
  type Data,
  type DataKind,
  defineProvider,
  EmptyObject,
  type Provider,
  ProviderError,
  readBytes,
  SPECIFICATION_VERSION,
  sleep,
  Type,
  type WriteResult,
} from '@nvisy/provider-core'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'

const KindSchema = Type.Union([
  Type.Literal('record'),
  Type.Literal('document'),
  Type.Literal('blob'),
  Type.Literal('message'),
])

export function keyOf(data: Data): string {
  switch (data.kind) {
    case 'record':
      return String(data.values.id)
    case 'blob':
      return data.key
    case 'document':
    case 'message':
    case 'embedding':
      return data.id
    case 'graph':
      return data.nodes.map((n) => n.id).join(',')
  }
}

export interface WriteCall {
  stream: string
  keys: string[]
  attempt: number
}

export interface MemoryWorld {
  provider: Provider
  /** Source streams: items by stream name, read in order. */
  sources: Map<string, Data[]>
  /** Sink streams: items by key (writes are upserts). */
  sinks: Map<string, Map<string, Data>>
  /** Every write call, in the order it started. */
  writes: WriteCall[]
  /** Items read so far per stream (counts the items handed to the runtime). */
  readCount: Map<string, number>
  /** Called before each item is yielded; throw to fail the read there. */
  beforeRead?: (stream: string, index: number) => Promise<void> | void
  /** Called before a write is applied; throw to fail the whole call, or return per-item failures by index. */
  beforeWrite?: (stream: string, batch: readonly Data[], call: number) => unknown
  /** Connections opened. */
  connects: number
}

export function createMemoryWorld(id = 'memory'): MemoryWorld {
  const world: MemoryWorld = {
    provider: undefined as unknown as Provider,
    sources: new Map(),
    sinks: new Map(),
    writes: [],
    readCount: new Map(),
    connects: 0,
  }
  const StreamSchema = Type.Object(
    { name: Type.String({ minLength: 1 }), kind: Type.Optional(KindSchema) },
    { additionalProperties: false },
  )
  // Cast: a Provider whose dataKindOf takes its own stream type is not assignable to Provider<TSchema...>.
  world.provider = defineProvider({
    id,
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: Type.Object(
      { token: Type.Optional(Type.String()) },
      { additionalProperties: false },
    ),
    params: EmptyObject,
    source: {
      data: ['record', 'document', 'blob', 'message'],
      stream: StreamSchema,
      context: Type.Object(
        { index: Type.Integer({ minimum: 0 }) },
        { additionalProperties: false },
      ),
      ordering: 'position in the list',
      dataKindOf: (stream) => (stream.kind ?? 'record') as DataKind,
    },
    sink: {
      data: ['record', 'document', 'blob', 'message'],
      stream: StreamSchema,
      idempotentBy: 'key',
      dataKindOf: (stream) => (stream.kind ?? 'record') as DataKind,
    },
    async connect() {
      world.connects++
      return {
        async check() {},
        async *read(stream, { after, signal }) {
          const items = world.sources.get(stream.name) ?? []
          for (
            let index = after === undefined ? 0 : after.index + 1;
            index < items.length;
            index++
          ) {
            if (signal.aborted) return
            await world.beforeRead?.(stream.name, index)
            world.readCount.set(stream.name, (world.readCount.get(stream.name) ?? 0) + 1)
            yield { data: items[index]!, context: { index } }
          }
        },
        async write(stream, batch, { signal }): Promise<WriteResult> {
          const call = world.writes.length
          const keys = batch.map(keyOf)
          world.writes.push({ stream: stream.name, keys, attempt: call })
          // Like a real sink, consume every blob body during the write, several at once.
          const stored = await Promise.all(
            batch.map(async (item) =>
              item.kind === 'blob' && !(item.body instanceof Uint8Array)
                ? { ...item, body: await readBytes(item.body) }
                : item,
            ),
          )
          const failed =
            ((await world.beforeWrite?.(stream.name, batch, call)) as number[] | undefined) ?? []
          if (signal.aborted) throw signal.reason
          let sink = world.sinks.get(stream.name)
          if (!sink) {
            sink = new Map()
            world.sinks.set(stream.name, sink)
          }
          let written = 0
          batch.forEach((item, index) => {
            if (failed.includes(index)) return
            sink.set(keyOf(item), stored[index]!)
            written++
          })
          return {
            written,
            failed: failed.map((index) => ({
              index,
              error: new ProviderError({ kind: 'data', message: `item ${keys[index]} refused` }),
            })),
          }
        },
        async close() {},
      }
    },
  }) as unknown as Provider
  return world
}

export function records(count: number, from = 0): Data[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'record' as const,
    values: { id: from + i, name: `row ${from + i}` },
  }))
}

export function memoryNode(
  id: string,
  role: 'source' | 'sink',
  stream: Record<string, unknown>,
  extra: Partial<PipelineNode> = {},
): PipelineNode {
  return { id, role, provider: 'memory', connection: { params: {} }, stream, ...extra }
}

export function simplePipeline(
  options: Pipeline['options'] = {},
  sink: Partial<PipelineNode> = {},
): Pipeline {
  return {
    id: 'p1',
    nodes: [
      memoryNode('src', 'source', { name: 'in' }),
      memoryNode('dst', 'sink', { name: 'out' }, sink),
    ],
    edges: [{ from: 'src', to: 'dst' }],
    options,
  }
}

export function transient(message = 'temporary'): ProviderError {
  return new ProviderError({ kind: 'transient', message })
}

export { sleep }
