import {
  type Data,
  isReplayableBody,
  memoryLogger,
  ProviderError,
  REPLAYABLE_BODY,
  type ReplayableBody,
} from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  createMemoryWorld,
  keyOf,
  type MemoryWorld,
  memoryNode,
  records,
  simplePipeline,
  sleep,
  transient,
} from '../__fixtures__/memory-provider.js'
import { MemoryCheckpointStore } from '../checkpoints/memory-checkpoint-store.js'
import type { Pipeline, PipelineNode } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import { executePipeline } from './execute.js'
import type { CheckpointStore, ExecuteOptions, RunEvent } from './types.js'

function setup(count = 100) {
  const world = createMemoryWorld()
  world.sources.set('in', records(count))
  return world
}

async function run(world: MemoryWorld, pipeline: Pipeline, extra: Partial<ExecuteOptions> = {}) {
  const events: RunEvent[] = []
  const checkpoints =
    (extra.checkpoints as MemoryCheckpointStore | undefined) ?? new MemoryCheckpointStore()
  const summary = await executePipeline({
    runId: 'run-1',
    pipeline,
    registry: new MapProviderRegistry([world.provider]),
    resolveConnection: async (node) => ({
      credentials: node.connection.credentials ?? {},
      params: node.connection.params,
    }),
    checkpoints,
    onEvent: (event) => {
      events.push(event)
    },
    signal: new AbortController().signal,
    retryBaseDelayMs: 5,
    progressIntervalMs: 50,
    ...extra,
  })
  return { summary, events, checkpoints }
}

function sinkKeys(world: MemoryWorld, name = 'out'): string[] {
  return [...(world.sinks.get(name)?.keys() ?? [])].sort((a, b) => Number(a) - Number(b))
}

/** A store that checks, at every save, that every item up to the saved one is in the sink. */
class AuditingStore extends MemoryCheckpointStore {
  saves: number[] = []
  violations: string[] = []
  constructor(
    readonly world: MemoryWorld,
    readonly sinks: string[] = ['out'],
  ) {
    super()
  }
  override async save(
    pipelineId: string,
    nodeId: string,
    context: unknown,
    runId: string,
  ): Promise<void> {
    const index = (context as { index: number }).index
    this.saves.push(index)
    for (const name of this.sinks) {
      const stored = this.world.sinks.get(name)
      for (let i = 0; i <= index; i++) {
        if (!stored?.has(String(i)))
          this.violations.push(`checkpoint ${index} saved before item ${i} reached ${name}`)
      }
    }
    await super.save(pipelineId, nodeId, context, runId)
  }
}

describe('executePipeline', () => {
  it('copies every item, emits events and saves the final checkpoint', async () => {
    const world = setup(250)
    const { summary, events, checkpoints } = await run(
      world,
      simplePipeline({}, { batch: { maxItems: 40 } }),
    )
    expect(summary.status).toBe('completed')
    expect(sinkKeys(world)).toEqual(records(250).map(keyOf))
    expect(summary.stats.nodes.src).toMatchObject({ items: 250, failed: 0 })
    expect(summary.stats.nodes.dst).toMatchObject({ items: 250, failed: 0 })
    expect(await checkpoints.load('p1', 'src')).toEqual({ index: 249 })
    expect(events[0]).toEqual({ type: 'started' })
    expect(events.at(-1)).toMatchObject({ type: 'completed' })
    expect(events.filter((e) => e.type === 'checkpoint').at(-1)).toEqual({
      type: 'checkpoint',
      nodeId: 'src',
      context: { index: 249 },
    })
    expect(summary.checkpoints).toEqual({ src: { index: 249 } })
  })

  it('batches by items, bytes and age', async () => {
    const world = setup(95)
    await run(world, simplePipeline({}, { batch: { maxItems: 10 } }))
    const sizes = world.writes.map((w) => w.keys.length)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(10)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(95)

    const bytesWorld = setup(50)
    await run(bytesWorld, simplePipeline({}, { batch: { maxItems: 1000, maxBytes: 100 } }))
    expect(Math.max(...bytesWorld.writes.map((w) => w.keys.length))).toBeLessThan(10)

    const slow = setup(6)
    slow.beforeRead = async (_s, index) => {
      if (index === 3) await sleep(300)
    }
    await run(slow, simplePipeline({}, { batch: { maxItems: 100, maxAgeMs: 50 } }))
    // The first three items are written long before the slow fourth one arrives; the read
    // pending when the deadline closed that batch starts the next one: nothing lost or reordered.
    expect(slow.writes[0]!.keys).toEqual(['0', '1', '2'])
    expect(slow.writes.flatMap((w) => w.keys)).toEqual(['0', '1', '2', '3', '4', '5'])
    expect(bytesWorld.writes.flatMap((w) => w.keys)).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    )
  })

  it('closes a batch before the item that would pass maxBytes, and sends an item larger than maxBytes alone', async () => {
    const world = setup(0)
    // approximateSize of { id, pad }: 'id' + 8 + 'pad' + pad length = 13 + n bytes.
    world.sources.set(
      'in',
      [10, 10, 10, 500, 10, 10].map((n, id) => ({
        kind: 'record' as const,
        values: { id, pad: 'x'.repeat(n) },
      })),
    )
    await run(world, simplePipeline({}, { batch: { maxItems: 100, maxBytes: 70 } }))
    expect(world.writes.map((w) => w.keys)).toEqual([['0', '1', '2'], ['3'], ['4', '5']])
  })

  it('bounds how far the source runs ahead of a slow sink (backpressure)', async () => {
    const world = setup(2000)
    let maxAhead = 0
    world.beforeWrite = async () => {
      const ahead = (world.readCount.get('in') ?? 0) - (world.sinks.get('out')?.size ?? 0)
      maxAhead = Math.max(maxAhead, ahead)
      await sleep(2)
      return undefined
    }
    const { summary } = await run(
      world,
      simplePipeline({ queueCapacity: 2 }, { batch: { maxItems: 10 } }),
    )
    expect(summary.status).toBe('completed')
    // item buffer (16) + a batch being formed + 2 queued + 1 in flight, with slack for the read in hand.
    expect(maxAhead).toBeLessThanOrEqual(16 + 10 * 4 + 2)
    expect(world.readCount.get('in')).toBe(2000)
  })

  it('logs where each edge waited: a slow sink makes the source wait, not the other way round', async () => {
    const world = setup(600)
    world.beforeWrite = async () => {
      await sleep(20)
      return undefined
    }
    const logger = memoryLogger()
    const { summary } = await run(
      world,
      simplePipeline({ queueCapacity: 1 }, { batch: { maxItems: 10 } }),
      { logger },
    )
    expect(summary.status).toBe('completed')
    const line = logger.lines.find((l) => /the source waited/.test(l.message ?? ''))
    const fields = line?.fields as {
      sourceWaitedMs: number
      sinkWaitedMs: number
      durationMs: number
    }
    expect(fields.sourceWaitedMs).toBeGreaterThan(fields.sinkWaitedMs)
    // 60 writes of 20 ms: most of the run the source was held back by the sink.
    expect(fields.sourceWaitedMs).toBeGreaterThan(fields.durationMs / 2)
  })

  it('logs where each edge waited: a slow source makes the sink wait', async () => {
    const world = setup(60)
    world.beforeRead = () => sleep(10)
    const logger = memoryLogger()
    const { summary } = await run(world, simplePipeline({}, { batch: { maxItems: 5 } }), {
      logger,
    })
    expect(summary.status).toBe('completed')
    const line = logger.lines.find((l) => /the source waited/.test(l.message ?? ''))
    const fields = line?.fields as {
      sourceWaitedMs: number
      sinkWaitedMs: number
      durationMs: number
    }
    expect(fields.sinkWaitedMs).toBeGreaterThan(fields.durationMs / 2)
    expect(fields.sourceWaitedMs).toBeLessThan(fields.sinkWaitedMs)
  })

  it('fans out to several sinks, each getting every item, and checkpoints only what all acknowledged', async () => {
    const world = setup(300)
    world.beforeWrite = async (stream) => {
      if (stream === 'slow') await sleep(3)
    }
    const store = new AuditingStore(world, ['out', 'slow'])
    const pipeline: Pipeline = {
      id: 'p1',
      nodes: [
        memoryNode('src', 'source', { name: 'in' }),
        memoryNode('fast', 'sink', { name: 'out' }, { batch: { maxItems: 7 } }),
        memoryNode('slow', 'sink', { name: 'slow' }, { batch: { maxItems: 5 } }),
      ],
      edges: [
        { from: 'src', to: 'fast' },
        { from: 'src', to: 'slow' },
      ],
      options: { checkpointEveryItems: 10 },
    }
    const { summary } = await run(world, pipeline, { checkpoints: store })
    expect(summary.status).toBe('completed')
    expect(sinkKeys(world, 'out')).toHaveLength(300)
    expect(sinkKeys(world, 'slow')).toHaveLength(300)
    expect(store.violations).toEqual([])
    expect(store.saves.length).toBeGreaterThan(5)
    expect(store.saves.at(-1)).toBe(299)
  })

  it('never checkpoints past an unacknowledged item when concurrent batches finish out of order', async () => {
    const world = setup(200)
    world.beforeWrite = async (_stream, _batch, call) => {
      // Every third call is slow: later batches finish first.
      await sleep(call % 3 === 0 ? 40 : 1)
    }
    const store = new AuditingStore(world)
    const { summary } = await run(
      world,
      simplePipeline({ checkpointEveryItems: 1 }, { batch: { maxItems: 5 }, concurrency: 4 }),
      {
        checkpoints: store,
      },
    )
    expect(summary.status).toBe('completed')
    expect(store.violations).toEqual([])
    expect(store.saves).toEqual([...store.saves].sort((a, b) => a - b))
    expect(store.saves.at(-1)).toBe(199)
  })

  it('fails on a non-retryable write error, keeping a checkpoint only over written items', async () => {
    const world = setup(200)
    world.beforeWrite = async (_s, _b, call) => {
      await sleep(call % 2 === 0 ? 10 : 1)
      if (call === 9) throw new ProviderError({ kind: 'auth', message: 'token revoked' })
    }
    const store = new AuditingStore(world)
    const { summary, events } = await run(
      world,
      simplePipeline({ checkpointEveryItems: 1 }, { batch: { maxItems: 5 }, concurrency: 3 }),
      {
        checkpoints: store,
      },
    )
    expect(summary.status).toBe('failed')
    expect(summary.error).toMatchObject({
      kind: 'auth',
      message: expect.stringContaining('token revoked'),
    })
    expect(events.at(-1)).toMatchObject({ type: 'failed', error: { kind: 'auth' } })
    expect(store.violations).toEqual([])
    const saved = (await store.load('p1', 'src')) as { index: number } | undefined
    expect(saved?.index ?? -1).toBeLessThan(200)
  })

  it('retries transient write and read errors, and gives up after maxAttempts', async () => {
    const world = setup(50)
    let failures = 0
    world.beforeWrite = () => {
      if (failures < 2) {
        failures++
        throw transient('connection reset')
      }
      return undefined
    }
    let readFailed = false
    world.beforeRead = (_s, index) => {
      if (index === 20 && !readFailed) {
        readFailed = true
        throw transient('socket hang up')
      }
    }
    const { summary } = await run(world, simplePipeline({}, { batch: { maxItems: 10 } }))
    expect(summary.status).toBe('completed')
    expect(sinkKeys(world)).toEqual(records(50).map(keyOf))
    // The read resumed after item 19: no item was read twice.
    expect(world.readCount.get('in')).toBe(50)

    const hopeless = setup(10)
    hopeless.beforeWrite = () => {
      throw transient('still down')
    }
    const result = await run(hopeless, simplePipeline({ maxAttempts: 3 }))
    expect(result.summary.status).toBe('failed')
    expect(result.summary.error?.kind).toBe('transient')
    expect(hopeless.writes).toHaveLength(3)
  })

  it('waits as long as a rate limit asks', async () => {
    const world = setup(5)
    let limited = false
    world.beforeWrite = () => {
      if (!limited) {
        limited = true
        throw new ProviderError({ kind: 'rate_limited', message: 'slow down', retryAfterMs: 200 })
      }
      return undefined
    }
    const started = Date.now()
    const { summary } = await run(world, simplePipeline())
    expect(summary.status).toBe('completed')
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    expect(sinkKeys(world)).toHaveLength(5)
  })

  it('reports per-item failures and sends them to the dead-letter sink', async () => {
    const world = setup(40)
    world.beforeWrite = (stream, batch) =>
      stream === 'out'
        ? batch.flatMap((item, i) => (Number(keyOf(item)) % 10 === 3 ? [i] : []))
        : undefined
    const pipeline: Pipeline = {
      id: 'p1',
      nodes: [
        memoryNode('src', 'source', { name: 'in' }),
        memoryNode('dst', 'sink', { name: 'out' }, { deadLetter: 'dlq', batch: { maxItems: 8 } }),
        memoryNode('dlq', 'sink', { name: 'dead', kind: 'document' }),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
    const { summary, events } = await run(world, pipeline)
    expect(summary.status).toBe('completed')
    const failed = events.filter((e) => e.type === 'item_failed')
    expect(failed).toHaveLength(4)
    expect(failed[0]).toMatchObject({ nodeId: 'dst', item: 'record', error: { kind: 'data' } })
    expect([...world.sinks.get('dead')!.keys()].sort()).toEqual(['13', '23', '3', '33'])
    expect(world.sinks.get('dead')!.get('3')).toEqual({
      kind: 'document',
      id: '3',
      content: { id: 3, name: 'row 3' },
    })
    expect(summary.stats.nodes.dst).toMatchObject({ items: 36, failed: 4 })
    expect(summary.stats.failedItems).toBe(4)
  })

  it('fails once the failure budget is spent', async () => {
    const world = setup(100)
    world.beforeWrite = (_s, batch) =>
      batch.flatMap((item, i) => (Number(keyOf(item)) % 10 === 0 ? [i] : []))
    const { summary } = await run(
      world,
      simplePipeline({ failureBudget: 2 }, { batch: { maxItems: 10 } }),
    )
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain(
      'failure budget spent: 3 items refused, the pipeline allows 2',
    )

    const within = setup(100)
    within.beforeWrite = (_s, batch) =>
      batch.flatMap((item, i) => (Number(keyOf(item)) === 5 ? [i] : []))
    // Within the budget the run goes on, and says partial: one item arrived nowhere.
    expect((await run(within, simplePipeline({ failureBudget: 1 }))).summary.status).toBe('partial')
  })

  it('cancels cleanly while a read is left pending by a batch deadline (no unhandled rejection)', async () => {
    const world = setup(10)
    // Three items, then a source that stalls: the 30 ms deadline closes the batch with the
    // fourth read still pending, and the cancel then fails the queue under it.
    world.beforeRead = async (_stream, index) => {
      if (index === 3) await sleep(1_000)
    }
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const controller = new AbortController()
      setTimeout(() => controller.abort('user asked'), 150)
      const { summary } = await run(
        world,
        simplePipeline({}, { batch: { maxItems: 100, maxAgeMs: 30 } }),
        { signal: controller.signal },
      )
      expect(summary.status).toBe('cancelled')
      expect(world.writes[0]!.keys).toEqual(['0', '1', '2'])
      await sleep(50)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    expect(unhandled).toEqual([])
  })

  it('cancels promptly and leaves a valid checkpoint', async () => {
    const world = setup(100_000)
    world.beforeWrite = () => sleep(20).then(() => undefined)
    const controller = new AbortController()
    const store = new AuditingStore(world)
    setTimeout(() => controller.abort('user asked'), 150)
    const started = Date.now()
    const { summary, events } = await run(
      world,
      simplePipeline({ checkpointEveryItems: 5 }, { batch: { maxItems: 10 }, concurrency: 2 }),
      {
        signal: controller.signal,
        checkpoints: store,
      },
    )
    expect(Date.now() - started).toBeLessThan(1500)
    expect(summary.status).toBe('cancelled')
    expect(events.at(-1)).toMatchObject({ type: 'cancelled', reason: 'user asked' })
    expect(store.violations).toEqual([])
    const saved = (await store.load('p1', 'src')) as { index: number }
    expect(saved.index).toBeGreaterThan(0)
    expect(saved.index).toBeLessThan(100_000)
    expect(summary.checkpoints.src).toEqual(saved)
  })

  it('resumes after a crash: the sink ends up equal to the source', async () => {
    const world = setup(500)
    const store = new MemoryCheckpointStore()
    // First run "crashes": a fatal error part way, after some batches were written out of order.
    world.beforeWrite = async (_s, _b, call) => {
      await sleep(call % 4 === 0 ? 8 : 1)
      if (call === 23) throw new ProviderError({ kind: 'internal', message: 'process died' })
    }
    const pipeline = simplePipeline(
      { checkpointEveryItems: 3 },
      { batch: { maxItems: 7 }, concurrency: 3 },
    )
    const first = await run(world, pipeline, { checkpoints: store })
    expect(first.summary.status).toBe('failed')
    const saved = (await store.load('p1', 'src')) as { index: number }
    expect(saved.index).toBeGreaterThan(50)
    const readBefore = world.readCount.get('in')!

    world.beforeWrite = undefined
    const second = await run(world, pipeline, { checkpoints: store, runId: 'run-2' })
    expect(second.summary.status).toBe('completed')
    // The second run starts right after the checkpoint.
    expect(world.readCount.get('in')! - readBefore).toBe(500 - saved.index - 1)
    const stored = world.sinks.get('out')!
    expect([...stored.keys()].sort()).toEqual(records(500).map(keyOf).sort())
    for (const item of records(500)) expect(stored.get(keyOf(item))).toEqual(item)

    // resume: false reads everything again.
    const third = await run(world, pipeline, { checkpoints: store, resume: false })
    expect(third.summary.stats.nodes.src!.items).toBe(500)
  })

  it('refuses an invalid pipeline before connecting', async () => {
    const world = setup(1)
    const pipeline = simplePipeline()
    pipeline.nodes[1]!.stream = { name: '' }
    const { summary, events } = await run(world, pipeline)
    expect(summary.status).toBe('failed')
    expect(summary.error?.kind).toBe('config')
    expect(summary.error?.issues?.[0]?.path).toBe('/nodes/1/stream/name')
    expect(events).toHaveLength(1)
    expect(world.connects).toBe(0)
  })

  it('rejects a stored checkpoint that does not fit the source', async () => {
    const world = setup(3)
    const store: CheckpointStore = { load: async () => ({ offset: 'x' }), save: async () => {} }
    const { summary } = await run(world, simplePipeline(), { checkpoints: store })
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain('stored checkpoint of node src')
  })

  it('converts records to JSONL blobs and blobs back to documents', async () => {
    const world = setup(3)
    const toBlobs = simplePipeline()
    toBlobs.nodes[1]!.stream = { name: 'files', kind: 'blob' }
    await run(world, toBlobs)
    const files = world.sinks.get('files')!
    expect([...files.keys()].sort()).toEqual(['0.jsonl', '1.jsonl', '2.jsonl'])
    const body = (files.get('1.jsonl') as Extract<Data, { kind: 'blob' }>).body as Uint8Array
    expect(new TextDecoder().decode(body)).toBe('{"id":1,"name":"row 1"}\n')

    const text = '{"id":"a","n":1}\n{"id":"b","n":2}\nnot json\n{"n":4}\n'
    world.sources.set('jsonl', [
      { kind: 'blob', key: 'data.jsonl', body: new TextEncoder().encode(text) },
    ])
    const parse: Pipeline = {
      id: 'p2',
      nodes: [
        memoryNode('src', 'source', { name: 'jsonl', kind: 'blob' }),
        memoryNode('dst', 'sink', { name: 'docs', kind: 'document' }),
      ],
      edges: [{ from: 'src', to: 'dst' }],
      // One bad line is let through: the run says partial, not completed.
      options: { failureBudget: 1 },
    }
    const { summary, events } = await run(world, parse)
    expect(summary.status).toBe('partial')
    expect(summary.stats.refusedItems).toBe(1)
    expect([...world.sinks.get('docs')!.values()]).toEqual([
      { kind: 'document', id: 'a', content: { id: 'a', n: 1 } },
      { kind: 'document', id: 'b', content: { id: 'b', n: 2 } },
      { kind: 'document', id: 'data.jsonl:4', content: { n: 4 } },
    ])
    expect(events.filter((e) => e.type === 'item_failed')).toEqual([
      expect.objectContaining({ nodeId: 'dst', item: 'blob "data.jsonl" line 3' }),
    ])
    expect(summary.checkpoints).toEqual({ src: { index: 0 } })
  })
})

describe('streamed blobs', () => {
  it('never resends a drained stream on retry', async () => {
    const world = setup(0)
    async function* big() {
      yield new Uint8Array(1024)
    }
    world.sources.set('blobs', [
      { kind: 'blob', key: 'big.bin', body: big(), size: 64 * 1024 * 1024 },
    ])
    let calls = 0
    world.beforeWrite = async (_s: string, batch: readonly Data[]) => {
      calls++
      for (const item of batch)
        if (item.kind === 'blob' && !(item.body instanceof Uint8Array))
          for await (const _ of item.body) void _
      if (calls === 1) throw transient('connection reset mid-upload')
      return undefined
    }
    const pipeline: Pipeline = {
      id: 'p3',
      nodes: [
        memoryNode('src', 'source', { name: 'blobs', kind: 'blob' }),
        memoryNode('dst', 'sink', { name: 'out', kind: 'blob' }),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
    const { summary } = await run(world, pipeline)
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain('cannot be resent by a retry')
    expect(world.sinks.get('out')?.size ?? 0).toBe(0)
  })
})

describe('buffered blobs', () => {
  /** A streamed body that takes `ms` to arrive and counts the reads running at once. */
  function slowBodies(count: number, ms: number) {
    const reads = { active: 0, max: 0, started: 0 }
    const items: Data[] = Array.from({ length: count }, (_, i) => {
      const text = `body ${i}`
      async function* body() {
        reads.started++
        reads.active++
        reads.max = Math.max(reads.max, reads.active)
        try {
          await sleep(ms)
          yield new TextEncoder().encode(text)
        } finally {
          reads.active--
        }
      }
      return { kind: 'blob' as const, key: `${i}.txt`, body: body(), size: text.length }
    })
    return { items, reads }
  }

  function blobPipeline(sinks: string[], extra: Partial<PipelineNode> = {}): Pipeline {
    return {
      id: 'pb',
      nodes: [
        memoryNode('src', 'source', { name: 'blobs', kind: 'blob' }),
        ...sinks.map((name) => memoryNode(name, 'sink', { name, kind: 'blob' }, extra)),
      ],
      edges: sinks.map((name) => ({ from: 'src', to: name })),
    }
  }

  const text = (data: Data | undefined) =>
    new TextDecoder().decode((data as Extract<Data, { kind: 'blob' }>).body as Uint8Array)

  it("reads small bodies concurrently in the sink's write path and resends them on a retry", async () => {
    const world = setup(0)
    const { items, reads } = slowBodies(24, 40)
    world.sources.set('blobs', items)
    let calls = 0
    world.beforeWrite = () => {
      if (++calls === 1) throw transient('connection reset mid-upload')
      return undefined
    }
    const { summary } = await run(world, blobPipeline(['out'], { batch: { maxItems: 8 } }))
    expect(summary.status).toBe('completed')
    const out = world.sinks.get('out')!
    expect(out.size).toBe(24)
    for (let i = 0; i < 24; i++) expect(text(out.get(`${i}.txt`))).toBe(`body ${i}`)
    // Each body was read once (the retry resent the bytes) and several were read at once.
    expect(reads.started).toBe(24)
    expect(reads.max).toBeGreaterThan(1)
    expect(reads.max).toBeLessThanOrEqual(8)
  })

  it('reads a body once for several sinks', async () => {
    const world = setup(0)
    const { items, reads } = slowBodies(10, 5)
    world.sources.set('blobs', items)
    const { summary } = await run(world, blobPipeline(['a', 'b'], { batch: { maxItems: 4 } }))
    expect(summary.status).toBe('completed')
    expect(reads.started).toBe(10)
    for (const name of ['a', 'b'])
      for (let i = 0; i < 10; i++)
        expect(text(world.sinks.get(name)?.get(`${i}.txt`))).toBe(`body ${i}`)
  })

  it('fails the run when a body shared by several sinks is too large to buffer', async () => {
    const world = setup(0)
    const chunk = new Uint8Array(1024 * 1024)
    async function* huge() {
      for (let i = 0; i < 65; i++) yield chunk
    }
    world.sources.set('blobs', [{ kind: 'blob', key: 'huge.bin', body: huge() }])
    const { summary } = await run(world, blobPipeline(['a', 'b']))
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain('could not be buffered to send to 2 sinks')
    expect(world.sinks.get('a')?.size ?? 0).toBe(0)
  })
})

describe('replayable blobs', () => {
  /** A body that reads `chunks` again at each iteration, like an object store's pinned GET. */
  function replayable(chunks: Uint8Array[], reads: { count: number }): ReplayableBody {
    return {
      [REPLAYABLE_BODY]: true,
      async *[Symbol.asyncIterator]() {
        reads.count++
        yield* chunks
      },
    }
  }

  function pipeline(sinks: string[]): Pipeline {
    return {
      id: 'pr',
      nodes: [
        memoryNode('src', 'source', { name: 'blobs', kind: 'blob' }),
        ...sinks.map((name) => memoryNode(name, 'sink', { name, kind: 'blob' })),
      ],
      edges: sinks.map((name) => ({ from: 'src', to: name })),
    }
  }

  const bytesOf = (data: Data | undefined) =>
    Buffer.from((data as Extract<Data, { kind: 'blob' }>).body as Uint8Array)

  it('reads a large replayable body again on a retry instead of failing the run', async () => {
    const world = setup(0)
    const reads = { count: 0 }
    const chunks = [Buffer.from('first half, '), Buffer.from('second half')]
    world.sources.set('blobs', [
      { kind: 'blob', key: 'big.bin', body: replayable(chunks, reads), size: 64 * 1024 * 1024 },
    ])
    let calls = 0
    world.beforeWrite = () => {
      if (++calls === 1) throw transient('connection reset mid-upload')
      return undefined
    }
    const { summary } = await run(world, pipeline(['out']))
    expect(summary.status).toBe('completed')
    expect(bytesOf(world.sinks.get('out')!.get('big.bin'))).toEqual(Buffer.concat(chunks))
    // Once per attempt: the sink read it, then the retry read it again.
    expect(reads.count).toBe(2)
  })

  it('hands a small replayable body to a single sink as it is, with no copy in memory', async () => {
    const world = setup(0)
    const reads = { count: 0 }
    const seen: boolean[] = []
    world.sources.set('blobs', [
      { kind: 'blob', key: 'small.txt', body: replayable([Buffer.from('tiny')], reads), size: 4 },
    ])
    world.beforeWrite = (_stream, batch) => {
      for (const item of batch) if (item.kind === 'blob') seen.push(isReplayableBody(item.body))
      return undefined
    }
    const { summary } = await run(world, pipeline(['out']))
    expect(summary.status).toBe('completed')
    expect(bytesOf(world.sinks.get('out')!.get('small.txt')).toString()).toBe('tiny')
    expect(seen).toEqual([true])
  })

  it('reads a small replayable body once for several sinks, and a large one per sink', async () => {
    const world = setup(0)
    const small = { count: 0 }
    const large = { count: 0 }
    // Larger than what the runtime buffers to share (8 MiB): each sink reads it.
    const mib = Buffer.alloc(1024 * 1024, 7)
    const chunks = Array.from({ length: 9 }, () => mib)
    world.sources.set('blobs', [
      { kind: 'blob', key: 'small.txt', body: replayable([Buffer.from('tiny')], small), size: 4 },
      { kind: 'blob', key: 'large.bin', body: replayable(chunks, large), size: 9 * mib.length },
    ])
    const { summary } = await run(world, pipeline(['a', 'b']))
    expect(summary.error?.message).toBeUndefined()
    expect(summary.status).toBe('completed')
    expect(small.count).toBe(1)
    expect(large.count).toBe(2)
    for (const name of ['a', 'b']) {
      expect(bytesOf(world.sinks.get(name)!.get('small.txt')).toString()).toBe('tiny')
      expect(bytesOf(world.sinks.get(name)!.get('large.bin')).length).toBe(9 * mib.length)
    }
  })
})
