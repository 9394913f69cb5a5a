import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  type Data,
  defineProvider,
  EmptyObject,
  type Provider,
  SPECIFICATION_VERSION,
  Type,
} from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { memoryNode } from '../__fixtures__/memory-provider.js'
import { MemoryCheckpointStore } from '../checkpoints/memory-checkpoint-store.js'
import { MapProviderRegistry } from '../registry.js'
import { executePipeline } from './execute.js'

// Node exposes gc() only with --expose-gc; setting the flag at run time makes it available to new contexts.
setFlagsFromString('--expose-gc')
const gc = (globalThis.gc ?? runInNewContext('gc')) as () => void

/** A provider whose source generates `count` small records on the fly and whose sink drops them. */
function generatingProvider(count: number, onItem: (index: number) => void): Provider {
  return defineProvider({
    id: 'memory',
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: EmptyObject,
    params: EmptyObject,
    source: {
      data: ['record'],
      stream: Type.Object({ name: Type.String() }),
      context: Type.Object({ index: Type.Integer({ minimum: 0 }) }),
      ordering: 'generation order',
    },
    sink: {
      data: ['record'],
      stream: Type.Object({ name: Type.String() }),
      idempotentBy: 'key',
    },
    async connect() {
      return {
        async check() {},
        async *read(_stream, { after }) {
          for (let index = after === undefined ? 0 : after.index + 1; index < count; index++) {
            onItem(index)
            const data: Data = { kind: 'record', values: { id: index, name: `row ${index}` } }
            yield { data, context: { index } }
          }
        },
        async write(_stream, batch) {
          return { written: batch.length, failed: [] }
        },
        async close() {},
      }
    },
  }) as unknown as Provider
}

const COUNT = 200_000

/** Copy COUNT generated rows through `sinks` and return the heap growth between row 20 000 and the last row. */
async function heapGrowth(sinks: { id: string; concurrency: number; maxItems: number }[]) {
  const samples: number[] = []
  const provider = generatingProvider(COUNT, (index) => {
    if (index === 20_000 || index === COUNT - 1) {
      gc()
      samples.push(process.memoryUsage().heapUsed)
    }
  })
  const checkpoints = new MemoryCheckpointStore()
  const summary = await executePipeline({
    runId: 'run-1',
    pipeline: {
      id: 'p1',
      nodes: [
        memoryNode('src', 'source', { name: 'in' }),
        ...sinks.map((sink) =>
          memoryNode(
            sink.id,
            'sink',
            { name: sink.id },
            { concurrency: sink.concurrency, batch: { maxItems: sink.maxItems } },
          ),
        ),
      ],
      edges: sinks.map((sink) => ({ from: 'src', to: sink.id })),
      options: { checkpointEveryItems: 5_000 },
    },
    registry: new MapProviderRegistry([provider]),
    resolveConnection: async () => ({ credentials: {}, params: {} }),
    checkpoints,
    onEvent: () => {},
    signal: new AbortController().signal,
  })
  expect(summary.status).toBe('completed')
  for (const sink of sinks) expect(summary.stats.nodes[sink.id]?.items).toBe(COUNT)
  expect(await checkpoints.load('p1', 'src')).toEqual({ index: COUNT - 1 })
  expect(samples).toHaveLength(2)
  return samples[1]! - samples[0]!
}

// The queues hold at most a few thousand rows; 180 000 more rows with even 50 bytes kept per
// row would grow the heap by 9 MB (the leak this guards against kept ~500 bytes a row).
const BOUND = 8 * 1024 * 1024

describe('executePipeline memory', () => {
  it('keeps the heap bounded by the queues, not by the rows copied (one sink)', async () => {
    expect(await heapGrowth([{ id: 'dst', concurrency: 1, maxItems: 500 }])).toBeLessThan(BOUND)
  }, 60_000)

  it('keeps the heap bounded with several sinks writing concurrently', async () => {
    const growth = await heapGrowth([
      { id: 'fast', concurrency: 3, maxItems: 200 },
      { id: 'slow', concurrency: 1, maxItems: 1000 },
    ])
    expect(growth).toBeLessThan(BOUND)
  }, 60_000)
})
