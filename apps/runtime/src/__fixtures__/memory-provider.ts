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
  type StreamSchema,
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
  Type.Literal('embedding'),
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
  /** Every key written to each sink stream, in commit order (an append log: a replay shows up here twice). */
  log: Map<string, string[]>
  /** Offsets committed by writes (`offsets` option), by sink stream then key; committed with the batch. */
  offsets: Map<string, Map<string, unknown>>
  /** Column schemas `describeStream` returns (`describe` option), by source stream. */
  schemas: Map<string, StreamSchema>
  /** Every `prepare` call (`prepare` option), with the reads done before it. */
  prepares: {
    stream: string
    schema: StreamSchema | undefined
    dryRun: boolean
    readsBefore: number
  }[]
  /** Tokens `check()` refuses with an auth error. */
  badTokens: Set<string>
  /** `partition` calls (`partition` option). */
  partitionCalls: number
}

export interface MemoryWorldOptions {
  /** The source can describe its streams (`describeStream` from `world.schemas`). */
  describe?: boolean
  /** The sink creates its destination in `prepare` (stream setting `create: 'never'` refuses a missing one). */
  prepare?: boolean
  /** The sink commits `WriteOptions.offset` with its batch, atomically, and `readOffset` returns it. */
  offsets?: boolean
  /** The source splits a stream into index ranges (`from` inclusive, `to` exclusive; the last open-ended). */
  partition?: boolean
}

export function createMemoryWorld(id = 'memory', options: MemoryWorldOptions = {}): MemoryWorld {
  const world: MemoryWorld = {
    provider: undefined as unknown as Provider,
    sources: new Map(),
    sinks: new Map(),
    writes: [],
    readCount: new Map(),
    connects: 0,
    log: new Map(),
    offsets: new Map(),
    schemas: new Map(),
    prepares: [],
    badTokens: new Set(),
    partitionCalls: 0,
  }
  const StreamSchema = Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      kind: Type.Optional(KindSchema),
      from: Type.Optional(Type.Integer({ minimum: 0 })),
      to: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    { additionalProperties: false },
  )
  const SinkStreamSchema = Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      kind: Type.Optional(KindSchema),
      create: Type.Optional(Type.Union([Type.Literal('never'), Type.Literal('ifMissing')])),
    },
    { additionalProperties: false },
  )
  const totalReads = () => [...world.readCount.values()].reduce((a, b) => a + b, 0)
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
      describe: options.describe === true,
      partition: options.partition === true,
      dataKindOf: (stream) => (stream.kind ?? 'record') as DataKind,
    },
    sink: {
      data: ['record', 'document', 'blob', 'message'],
      stream: SinkStreamSchema,
      idempotentBy: 'key',
      prepare: options.prepare === true,
      offsets: options.offsets === true,
      dataKindOf: (stream) => (stream.kind ?? 'record') as DataKind,
    },
    async connect({ credentials }) {
      world.connects++
      return {
        async check() {
          if (credentials.token !== undefined && world.badTokens.has(credentials.token))
            throw new ProviderError({ kind: 'auth', message: 'token refused' })
        },
        ...(options.describe
          ? {
              async describeStream(stream: { name: string }) {
                const schema = world.schemas.get(stream.name)
                if (!schema)
                  throw new ProviderError({
                    kind: 'not_found',
                    message: `no stream ${stream.name}`,
                  })
                return structuredClone(schema)
              },
            }
          : {}),
        ...(options.prepare
          ? {
              async prepare(
                stream: { name: string; create?: 'never' | 'ifMissing' },
                {
                  schema,
                  dryRun,
                }: { schema?: StreamSchema | undefined; dryRun?: boolean | undefined },
              ) {
                world.prepares.push({
                  stream: stream.name,
                  schema,
                  dryRun: dryRun === true,
                  readsBefore: totalReads(),
                })
                const existed = world.sinks.has(stream.name)
                if (existed) return { existed, actions: [] }
                if (stream.create === 'never')
                  throw new ProviderError({
                    kind: 'not_found',
                    message: `sink stream ${stream.name} does not exist and create is 'never'`,
                  })
                const columns = schema?.columns.map((c) => `${c.name} ${c.type.type}`).join(', ')
                const actions = [`CREATE ${stream.name} (${columns ?? ''})`]
                if (!dryRun) world.sinks.set(stream.name, new Map())
                return { existed, actions }
              },
            }
          : {}),
        ...(options.offsets
          ? {
              async readOffset(stream: { name: string }, key: string) {
                return structuredClone(world.offsets.get(stream.name)?.get(key))
              },
            }
          : {}),
        ...(options.partition
          ? {
              async partition(
                stream: { name: string; from?: number; to?: number },
                { count }: { count: number },
              ) {
                world.partitionCalls++
                const from = stream.from ?? 0
                const to = stream.to ?? (world.sources.get(stream.name) ?? []).length
                const size = Math.max(0, to - from)
                const parts = Math.max(1, Math.min(count, size))
                return {
                  partitions: Array.from({ length: parts }, (_, i) => ({
                    ...stream,
                    ...(i > 0 ? { from: from + Math.floor((i * size) / parts) } : {}),
                    ...(i < parts - 1 ? { to: from + Math.floor(((i + 1) * size) / parts) } : {}),
                  })),
                  ...(parts < count ? { reason: `${size} items` } : {}),
                }
              },
            }
          : {}),
        async *read(stream, { after, signal }) {
          const items = world.sources.get(stream.name) ?? []
          const end = stream.to ?? Number.POSITIVE_INFINITY
          for (
            let index =
              after === undefined
                ? (stream.from ?? 0)
                : Math.max(after.index + 1, stream.from ?? 0);
            index < items.length && index < end;
            index++
          ) {
            if (signal.aborted) return
            await world.beforeRead?.(stream.name, index)
            world.readCount.set(stream.name, (world.readCount.get(stream.name) ?? 0) + 1)
            yield { data: items[index]!, context: { index } }
          }
        },
        async write(stream, batch, { signal, offset }): Promise<WriteResult> {
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
          let log = world.log.get(stream.name)
          if (!log) {
            log = []
            world.log.set(stream.name, log)
          }
          // Data and offset land together (one synchronous step: nothing can interleave).
          let written = 0
          batch.forEach((item, index) => {
            if (failed.includes(index)) return
            sink.set(keyOf(item), stored[index]!)
            log.push(keyOf(item))
            written++
          })
          if (offset && options.offsets) {
            let offsets = world.offsets.get(stream.name)
            if (!offsets) {
              offsets = new Map()
              world.offsets.set(stream.name, offsets)
            }
            offsets.set(offset.key, structuredClone(offset.context))
          }
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
