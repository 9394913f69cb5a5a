import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  createMemoryWorld,
  type MemoryWorld,
  type MemoryWorldOptions,
  memoryNode,
  records,
  simplePipeline,
  sleep,
} from '../__fixtures__/memory-provider.js'
import { MemoryCheckpointStore } from '../checkpoints/memory-checkpoint-store.js'
import type { Pipeline } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import {
  executePartitioned,
  type PartitionedRunEvent,
  type PartitionedRunOptions,
  partitionPipelineId,
  planKey,
} from './partitioned.js'

function world(count: number, options: MemoryWorldOptions = { partition: true }): MemoryWorld {
  const w = createMemoryWorld('memory', options)
  w.sources.set('in', records(count))
  return w
}

async function run(w: MemoryWorld, pipeline: Pipeline, extra: Partial<PartitionedRunOptions> = {}) {
  const events: PartitionedRunEvent[] = []
  const checkpoints = (extra.checkpoints as MemoryCheckpointStore) ?? new MemoryCheckpointStore()
  const summary = await executePartitioned({
    runId: 'run-1',
    pipeline,
    registry: new MapProviderRegistry([w.provider]),
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
    progressIntervalMs: 20,
    partitions: 4,
    ...extra,
  })
  return { summary, events, checkpoints }
}

const sinkKeys = (w: MemoryWorld, name = 'out') =>
  [...(w.sinks.get(name)?.keys() ?? [])].map(Number).sort((a, b) => a - b)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

describe('partitioned runs', () => {
  it('reads every partition once, all at once, and the sinks hold exactly the source', async () => {
    const w = world(1000)
    const order: number[] = []
    w.beforeRead = async (_stream, index) => {
      order.push(index)
      if (index % 50 === 0) await sleep(1)
    }
    const { summary, events } = await run(w, simplePipeline({ checkpointEveryItems: 100 }))
    expect(summary.status).toBe('completed')
    expect(summary.plan).toMatchObject({ requested: 4, count: 4, resumed: false })
    expect(summary.partitions!.map((p) => p.status)).toEqual([
      'completed',
      'completed',
      'completed',
      'completed',
    ])
    expect(summary.partitions!.map((p) => p.stream)).toEqual([
      { name: 'in', to: 250 },
      { name: 'in', from: 250, to: 500 },
      { name: 'in', from: 500, to: 750 },
      { name: 'in', from: 750 },
    ])
    expect(sinkKeys(w)).toEqual(range(0, 1000))
    // Each item written once: no partition overlapped another.
    expect(w.log.get('out')).toHaveLength(1000)
    expect(summary.stats.nodes.src).toMatchObject({ items: 1000 })
    expect(summary.stats.nodes.dst).toMatchObject({ items: 1000 })
    // At once: partition 3 read items before partition 0 was through.
    expect(order.indexOf(750)).toBeLessThan(order.indexOf(249))
    // One started and one completed event for the run; checkpoints name their partition.
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'completed')).toHaveLength(1)
    const checkpointed = events.filter((e) => e.type === 'checkpoint')
    expect(new Set(checkpointed.map((e) => e.partition?.index))).toEqual(new Set([0, 1, 2, 3]))
    const last = events.filter((e) => e.type === 'progress').at(-1)
    expect(last).toMatchObject({ nodes: { src: { items: 1000 }, dst: { items: 1000 } } })
    expect(summary.partitions!.map((p) => p.checkpoint)).toEqual([
      { index: 249 },
      { index: 499 },
      { index: 749 },
      { index: 999 },
    ])
  })

  it('a stopped run resumes each partition from its own checkpoint; completed partitions are not read again', async () => {
    const w = world(1000)
    const store = new MemoryCheckpointStore()
    const controller = new AbortController()
    const othersDone = () => {
      const keys = new Set(sinkKeys(w))
      return range(0, 500).every((k) => keys.has(k)) && range(750, 1000).every((k) => keys.has(k))
    }
    // Partition 2 stalls at item 600 until the other three have written everything, then the run is stopped.
    w.beforeRead = async (_stream, index) => {
      if (index === 600) {
        while (!othersDone()) await sleep(5)
        controller.abort(new Error('stop'))
      }
    }
    // Small batches, so partition 2 has written (and checkpointed) part of its range when stopped.
    const pipeline = simplePipeline({ checkpointEveryItems: 10 }, { batch: { maxItems: 10 } })
    const first = await run(w, pipeline, { checkpoints: store, signal: controller.signal })
    expect(first.summary.status).toBe('cancelled')
    expect(first.summary.partitions!.map((p) => p.status)).toEqual([
      'completed',
      'completed',
      'cancelled',
      'completed',
    ])
    const stoppedAt = (first.summary.partitions![2]!.checkpoint as { index: number }).index
    expect(stoppedAt).toBeGreaterThanOrEqual(500)
    expect(stoppedAt).toBeLessThan(600)
    const planId = first.summary.plan!.id
    expect(await store.load(partitionPipelineId('p1', planId, 2), 'src')).toEqual({
      index: stoppedAt,
    })
    expect(await store.load(planKey('p1'), 'src')).toMatchObject({
      partitions: [{ done: true }, { done: true }, { done: false }, { done: true }],
    })

    const resumedReads: number[] = []
    w.beforeRead = (_stream, index) => {
      resumedReads.push(index)
    }
    const second = await run(w, pipeline, { checkpoints: store })
    expect(second.summary.status).toBe('completed')
    expect(second.summary.plan).toMatchObject({ id: planId, resumed: true })
    expect(second.summary.partitions!.map((p) => p.skipped ?? false)).toEqual([
      true,
      true,
      false,
      true,
    ])
    // Only the rest of partition 2, from just after its checkpoint.
    expect(resumedReads).toEqual(range(stoppedAt + 1, 750))
    expect(sinkKeys(w)).toEqual(range(0, 1000))

    // A run after a completed one reads on from every partition's checkpoint: only new items.
    w.sources.set('in', records(1010))
    const newReads: number[] = []
    w.beforeRead = (_stream, index) => {
      newReads.push(index)
    }
    const third = await run(w, pipeline, { checkpoints: store })
    expect(third.summary.status).toBe('completed')
    expect(newReads).toEqual(range(1000, 1010))
    expect(third.summary.partitions![3]!.checkpoint).toEqual({ index: 1009 })
  })

  it('a failed partition fails the run with its error and stops the others, which keep their checkpoints', async () => {
    const w = world(1000)
    w.beforeRead = async (_stream, index) => {
      if (index === 300) throw new ProviderError({ kind: 'data', message: 'row 300 is unreadable' })
      await sleep(index % 10 === 0 ? 1 : 0)
    }
    const { summary, events, checkpoints } = await run(
      w,
      simplePipeline({ checkpointEveryItems: 10 }, { batch: { maxItems: 10 } }),
    )
    expect(summary.status).toBe('failed')
    expect(summary.error?.kind).toBe('data')
    expect(summary.error?.message).toBe('partition 1 of 4 failed: row 300 is unreadable')
    expect(summary.partitions![1]!.status).toBe('failed')
    expect(summary.partitions!.filter((p) => p.status === 'cancelled').length).toBeGreaterThan(0)
    expect(events.filter((e) => e.type === 'failed')).toHaveLength(1)
    const plan = (await checkpoints.load(planKey('p1'), 'src')) as {
      partitions: { done: boolean }[]
    }
    expect(plan.partitions[1]!.done).toBe(false)
    // Each stopped partition saved its acknowledged prefix: the failed one short of row 300.
    const failedAt = (summary.partitions![1]!.checkpoint as { index: number }).index
    expect(failedAt).toBeGreaterThanOrEqual(250)
    expect(failedAt).toBeLessThan(300)
    for (const partition of summary.partitions!.filter((p) => p.status === 'cancelled'))
      expect(
        await checkpoints.load(partitionPipelineId('p1', summary.plan!.id, partition.index), 'src'),
      ).toEqual(partition.checkpoint)
  })

  it('a cancel reaches every partition', async () => {
    const w = world(4000)
    const controller = new AbortController()
    w.beforeRead = async (_stream, index) => {
      if (index === 20) controller.abort(new Error('operator'))
      await sleep(1)
    }
    const { summary, events } = await run(w, simplePipeline(), { signal: controller.signal })
    expect(summary.status).toBe('cancelled')
    expect(summary.partitions!.map((p) => p.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
    ])
    expect(sinkKeys(w).length).toBeLessThan(4000)
    const cancelled = events.filter((e) => e.type === 'cancelled')
    expect(cancelled).toHaveLength(1)
    expect(cancelled[0]).toMatchObject({ reason: 'operator' })
  })

  it('a cancel while the partitions are planned ends the run cancelled, with nothing read', async () => {
    const w = world(100)
    const controller = new AbortController()
    controller.abort(new Error('operator'))
    const { summary, events } = await run(w, simplePipeline(), { signal: controller.signal })
    expect(summary.status).toBe('cancelled')
    expect(events.map((e) => e.type)).toEqual(['cancelled'])
    expect(w.readCount.get('in')).toBeUndefined()
  })

  it('a source that cannot split runs as one ordinary run', async () => {
    const w = world(100, {})
    const { summary, checkpoints } = await run(w, simplePipeline())
    expect(summary.status).toBe('completed')
    expect(summary.partitions).toBeUndefined()
    expect(sinkKeys(w)).toEqual(range(0, 100))
    expect(await checkpoints.load('p1', 'src')).toEqual({ index: 99 })
  })

  it('fewer items than partitions: the plan says why', async () => {
    const w = world(3)
    const { summary } = await run(w, simplePipeline(), { partitions: 8 })
    expect(summary.status).toBe('completed')
    expect(summary.plan).toMatchObject({ requested: 8, count: 3, reason: '3 items' })
    expect(sinkKeys(w)).toEqual([0, 1, 2])
  })

  it('refuses to split where an unpartitioned run stopped, and a plan made for other stream settings', async () => {
    const w = world(100)
    const store = new MemoryCheckpointStore()
    await store.save('p1', 'src', { index: 9 }, 'old-run')
    const refused = await run(w, simplePipeline(), { checkpoints: store })
    expect(refused.summary.status).toBe('failed')
    expect(refused.summary.error?.kind).toBe('config')
    expect(refused.summary.error?.message).toMatch(/checkpoint of an unpartitioned run/)
    expect(w.partitionCalls).toBe(0)
    expect(w.sinks.get('out')).toBeUndefined()

    // --no-resume: plan and read everything.
    const fresh = await run(w, simplePipeline(), { checkpoints: store, resume: false })
    expect(fresh.summary.status).toBe('completed')
    expect(sinkKeys(w)).toEqual(range(0, 100))

    const other = simplePipeline()
    other.nodes[0] = memoryNode('src', 'source', { name: 'in', to: 50 })
    const changed = await run(w, other, { checkpoints: store })
    expect(changed.summary.status).toBe('failed')
    expect(changed.summary.error?.message).toMatch(/made for other stream settings/)
  })

  it('one partition prepares the sinks before the others start', async () => {
    const w = world(400, { partition: true, prepare: true })
    const { summary, events } = await run(
      w,
      simplePipeline({}, { stream: { name: 'fresh', create: 'ifMissing' } }),
    )
    expect(summary.status).toBe('completed')
    // Four partitions each ask; only the first created, before anything was read.
    expect(w.prepares).toHaveLength(4)
    expect(w.prepares[0]!.readsBefore).toBe(0)
    const prepared = events.filter((e) => e.type === 'prepared')
    expect(prepared).toHaveLength(1)
    expect(prepared[0]).toMatchObject({ existed: false, actions: ['CREATE fresh ()'] })
    expect(sinkKeys(w, 'fresh')).toEqual(range(0, 400))
  })

  it('exactly-once offsets are committed under each partition’s own key', async () => {
    const w = world(400, { partition: true, offsets: true })
    const { summary } = await run(w, simplePipeline())
    expect(summary.status).toBe('completed')
    const offsets = w.offsets.get('out')!
    const planId = summary.plan!.id
    expect([...offsets.keys()].sort()).toEqual(
      [0, 1, 2, 3].map((i) => `${partitionPipelineId('p1', planId, i)}/src/dst`).sort(),
    )
    expect(offsets.get(`${partitionPipelineId('p1', planId, 0)}/src/dst`)).toEqual({ index: 99 })
  })

  it('refuses a pipeline with two sources', async () => {
    const w = world(10)
    w.sources.set('in2', records(10))
    const pipeline: Pipeline = {
      id: 'p1',
      nodes: [
        memoryNode('a', 'source', { name: 'in' }),
        memoryNode('b', 'source', { name: 'in2' }),
        memoryNode('dst', 'sink', { name: 'out' }),
      ],
      edges: [
        { from: 'a', to: 'dst' },
        { from: 'b', to: 'dst' },
      ],
    }
    const { summary } = await run(w, pipeline)
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toBe(
      'partitioned runs split one source: pipeline p1 has 2 source nodes (a, b)',
    )
  })

  it('partition pipeline ids stay valid ids, long ones shortened with a digest', () => {
    expect(partitionPipelineId('copy', 'ab12cd34', 3)).toBe('copy__pab12cd34_3')
    const long = partitionPipelineId('x'.repeat(128), 'ab12cd34', 1023)
    expect(long.length).toBeLessThanOrEqual(128)
    expect(long).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(long).not.toBe(partitionPipelineId(`${'x'.repeat(127)}y`, 'ab12cd34', 1023))
  })
})
