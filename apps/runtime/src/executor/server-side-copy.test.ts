// The executor's side of server-side copies: which blob -> blob edges get `serverSideCopy` on
// their writes (decided once, at connect time), and that batching, retries and checkpoints are
// those of a streamed copy. The S3 provider's copies are tested against a real server in
// packages/provider-s3 and packages/integration-tests.
import {
  type BlobData,
  type Data,
  defineProvider,
  memoryLogger,
  ProviderError,
  SPECIFICATION_VERSION,
  Type,
} from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore } from '../checkpoints/memory-checkpoint-store.js'
import type { Pipeline } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import { executePipeline } from './execute.js'

interface Store {
  objects: Map<string, Map<string, Uint8Array>>
  /** Keys whose bodies something iterated. */
  opened: string[]
  /** Every write call: its bucket, keys and whether it asked for server-side copies. */
  writes: { bucket: string; keys: string[]; serverSideCopy: boolean | undefined }[]
  /** Fail this many write calls with a transient error first. */
  failWrites: number
  /** The size each listed object declares (its listing's size), when not its bytes'. */
  declaredSize?: number
}

/** An object store in memory: buckets at an endpoint, copies by origin like S3's. */
function storeProvider(store: Store) {
  const Params = Type.Object({ bucket: Type.String(), endpoint: Type.String() })
  return defineProvider({
    id: 'memstore',
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: Type.Object({ key: Type.String() }),
    params: Params,
    source: {
      data: 'blob',
      stream: Type.Object({}),
      context: Type.Object({ key: Type.String() }),
      ordering: 'key',
    },
    sink: { data: 'blob', stream: Type.Object({}), idempotentBy: 'key' },
    serverSideCopy: (source, sink) => source.params.endpoint === sink.params.endpoint,
    async connect({ params }) {
      const bucket = (name: string) => {
        const objects = store.objects.get(name) ?? new Map<string, Uint8Array>()
        store.objects.set(name, objects)
        return objects
      }
      return {
        async check() {},
        async *read(_stream, { after }) {
          const objects = [...bucket(params.bucket).entries()].sort(([a], [b]) => (a < b ? -1 : 1))
          for (const [key, bytes] of objects) {
            if (after && key <= after.key) continue
            const data: BlobData = {
              kind: 'blob',
              key,
              size: store.declaredSize ?? bytes.byteLength,
              origin: { bucket: params.bucket, key, size: store.declaredSize ?? bytes.byteLength },
              body: {
                async *[Symbol.asyncIterator]() {
                  store.opened.push(key)
                  yield bytes
                },
              },
            }
            yield { data, context: { key } }
          }
        },
        async write(_stream, batch: readonly Data[], options) {
          store.writes.push({
            bucket: params.bucket,
            keys: batch.map((b) => (b as BlobData).key),
            serverSideCopy: options.serverSideCopy,
          })
          if (store.failWrites > 0) {
            store.failWrites--
            throw new ProviderError({ kind: 'transient', message: 'connection reset' })
          }
          for (const item of batch) {
            const blob = item as BlobData
            if (options.serverSideCopy && blob.origin) {
              bucket(params.bucket).set(blob.key, bucket(blob.origin.bucket).get(blob.origin.key)!)
              continue
            }
            const chunks: Uint8Array[] = []
            for await (const chunk of blob.body as AsyncIterable<Uint8Array>) chunks.push(chunk)
            bucket(params.bucket).set(blob.key, Buffer.concat(chunks))
          }
          return { written: batch.length, failed: [] }
        },
        async close() {},
      }
    },
  })
}

function world(count: number): Store {
  const objects = new Map<string, Uint8Array>()
  for (let i = 0; i < count; i++)
    objects.set(`object-${String(i).padStart(3, '0')}`, Buffer.from(`body ${i}`))
  return { objects: new Map([['src', objects]]), opened: [], writes: [], failWrites: 0 }
}

const node = (
  id: string,
  role: 'source' | 'sink',
  bucket: string,
  endpoint = 'http://store',
  key = 'k1',
) => ({
  id,
  role,
  provider: 'memstore',
  connection: { params: { bucket, endpoint }, credentials: { key } },
  stream: {},
  ...(role === 'sink' ? { batch: { maxItems: 4 } } : {}),
})

async function run(store: Store, pipeline: Pipeline, checkpoints = new MemoryCheckpointStore()) {
  const logger = memoryLogger()
  const summary = await executePipeline({
    runId: 'run-1',
    pipeline,
    registry: new MapProviderRegistry([storeProvider(store)]),
    resolveConnection: async (n) => ({
      credentials: n.connection.credentials ?? {},
      params: n.connection.params,
    }),
    checkpoints,
    onEvent: () => {},
    signal: new AbortController().signal,
    retryBaseDelayMs: 1,
    logger,
  })
  return { summary, logger, checkpoints }
}

const copied = (store: Store, bucket: string) =>
  Object.fromEntries(
    [...(store.objects.get(bucket) ?? new Map()).entries()].map(([k, v]) => [
      k,
      Buffer.from(v).toString(),
    ]),
  )

describe('server-side copies in a pipeline', () => {
  it('one endpoint and the same credentials: every write asks for copies and no body is opened', async () => {
    const store = world(10)
    const { summary, logger } = await run(store, {
      id: 'copy',
      nodes: [node('src', 'source', 'src'), node('dst', 'sink', 'dst')],
      edges: [{ from: 'src', to: 'dst' }],
    } as Pipeline)
    expect(summary.status).toBe('completed')
    expect(copied(store, 'dst')).toEqual(copied(store, 'src'))
    expect(store.opened).toEqual([])
    expect(store.writes.length).toBe(3)
    expect(store.writes.every((w) => w.serverSideCopy === true)).toBe(true)
    const line = logger.lines.find((l) => /server-side/.test(l.message ?? ''))
    expect(line?.level).toBe('info')
    expect(JSON.stringify(logger.lines)).not.toContain('"k1"')
  })

  it('large objects copied server-side share batches (a copy weighs a request, not its bytes)', async () => {
    const pipeline = {
      id: 'copy',
      nodes: [node('src', 'source', 'src'), node('dst', 'sink', 'dst')],
      edges: [{ from: 'src', to: 'dst' }],
    } as Pipeline
    const store = { ...world(10), declaredSize: 64 * 1024 * 1024 }
    const { summary } = await run(store, pipeline)
    expect(summary.status).toBe('completed')
    // maxItems 4: three copy requests' batches, not one object per batch by its 64 MiB.
    expect(store.writes.map((w) => w.keys.length)).toEqual([4, 4, 2])
    // Streamed, the same objects go one per batch (each is over the 8 MiB batch limit).
    const far = { ...world(10), declaredSize: 64 * 1024 * 1024 }
    await run(far, {
      ...pipeline,
      nodes: [node('src', 'source', 'src'), node('dst', 'sink', 'dst', 'http://far')],
    } as Pipeline)
    expect(far.writes.map((w) => w.keys.length)).toEqual(Array(10).fill(1))
  })

  it('other credentials, another endpoint: the same pipeline streams', async () => {
    for (const sink of [
      node('dst', 'sink', 'dst', 'http://store', 'k2'),
      node('dst', 'sink', 'dst', 'http://other-store'),
    ]) {
      const store = world(6)
      const { summary } = await run(store, {
        id: 'stream',
        nodes: [node('src', 'source', 'src'), sink],
        edges: [{ from: 'src', to: 'dst' }],
      } as Pipeline)
      expect(summary.status).toBe('completed')
      expect(copied(store, 'dst')).toEqual(copied(store, 'src'))
      expect(store.opened.length).toBe(6)
      expect(store.writes.every((w) => w.serverSideCopy === false)).toBe(true)
    }
  })

  it('fan-out: the sink at the same place copies, the other streams, each gets every object', async () => {
    const store = world(5)
    const { summary } = await run(store, {
      id: 'fan',
      nodes: [
        node('src', 'source', 'src'),
        node('near', 'sink', 'near'),
        node('far', 'sink', 'far', 'http://other-store'),
      ],
      edges: [
        { from: 'src', to: 'near' },
        { from: 'src', to: 'far' },
      ],
    } as Pipeline)
    expect(summary.status).toBe('completed')
    expect(copied(store, 'near')).toEqual(copied(store, 'src'))
    expect(copied(store, 'far')).toEqual(copied(store, 'src'))
    expect(
      new Set(store.writes.filter((w) => w.bucket === 'near').map((w) => w.serverSideCopy)),
    ).toEqual(new Set([true]))
    expect(
      new Set(store.writes.filter((w) => w.bucket === 'far').map((w) => w.serverSideCopy)),
    ).toEqual(new Set([false]))
  })

  it('a failed batch is retried as a copy; the checkpoint is the last key; a resumed run copies nothing again', async () => {
    const store = world(9)
    store.failWrites = 2
    const pipeline = {
      id: 'retry',
      nodes: [node('src', 'source', 'src'), node('dst', 'sink', 'dst')],
      edges: [{ from: 'src', to: 'dst' }],
    } as Pipeline
    const first = await run(store, pipeline)
    expect(first.summary.status).toBe('completed')
    expect(copied(store, 'dst')).toEqual(copied(store, 'src'))
    expect(store.writes.every((w) => w.serverSideCopy === true)).toBe(true)
    // Two failed attempts, then three batches: the first batch was sent three times.
    expect(store.writes.map((w) => w.keys[0])).toEqual([
      'object-000',
      'object-000',
      'object-000',
      'object-004',
      'object-008',
    ])
    expect(first.summary.checkpoints).toEqual({ src: { key: 'object-008' } })
    store.writes = []
    const second = await run(store, pipeline, first.checkpoints)
    expect(second.summary.status).toBe('completed')
    expect(store.writes).toEqual([])
    expect(store.opened).toEqual([])
  })
})
