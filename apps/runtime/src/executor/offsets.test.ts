import { describe, expect, it } from 'vitest'
import {
  createMemoryWorld,
  type MemoryWorld,
  memoryNode,
  records,
  sleep,
} from '../__fixtures__/memory-provider.js'
import { LosingCheckpointStore, runPipeline } from '../__fixtures__/run.js'
import type { Pipeline } from '../pipeline-types.js'

const ids = (count: number) => Array.from({ length: count }, (_, i) => String(i))

function single(): Pipeline {
  return {
    id: 'p1',
    nodes: [
      memoryNode('src', 'source', { name: 'in' }),
      memoryNode('dst', 'sink', { name: 'out' }, { batch: { maxItems: 10, maxAgeMs: 5 } }),
    ],
    edges: [{ from: 'src', to: 'dst' }],
    options: { checkpointEveryItems: 10 },
  }
}

function fanOut(): Pipeline {
  return {
    id: 'p1',
    nodes: [
      memoryNode('src', 'source', { name: 'in' }),
      memoryNode('a', 'sink', { name: 'a' }, { batch: { maxItems: 10, maxAgeMs: 5 } }),
      memoryNode('b', 'sink', { name: 'b' }, { batch: { maxItems: 10, maxAgeMs: 5 } }),
    ],
    edges: [
      { from: 'src', to: 'a' },
      { from: 'src', to: 'b' },
    ],
    options: { checkpointEveryItems: 10 },
  }
}

/** Crash after `writes` write calls on `stream`: the run is cancelled and no later checkpoint is kept. */
async function crash(
  world: MemoryWorld,
  pipeline: Pipeline,
  store: LosingCheckpointStore,
  stream: string,
  writes: number,
) {
  const controller = new AbortController()
  let calls = 0
  world.beforeWrite = (name) => {
    if (name === stream && ++calls > writes) controller.abort(new Error('killed'))
  }
  const { summary } = await runPipeline(world, pipeline, {
    checkpoints: store,
    signal: controller.signal,
  })
  world.beforeWrite = undefined
  return summary
}

describe('exactly-once appends through sink offsets', () => {
  it('a crash and resume writes each item once with one sink', async () => {
    const world = createMemoryWorld('memory', { offsets: true })
    world.sources.set('in', records(100))
    const store = new LosingCheckpointStore(2)
    const first = await crash(world, single(), store, 'out', 5)
    expect(first.status).toBe('cancelled')
    expect(world.log.get('out')).toEqual(ids(50))
    // The sink holds its offset (atomic with the data); the checkpoint lags behind it.
    expect(world.offsets.get('out')?.get('p1/src/dst')).toEqual({ index: 49 })
    expect(await store.load('p1', 'src')).toEqual({ index: 19 })

    store.keep = Number.POSITIVE_INFINITY
    const { summary } = await runPipeline(world, single(), { checkpoints: store })
    expect(summary.status).toBe('completed')
    expect(world.log.get('out')).toEqual(ids(100))
    expect(await store.load('p1', 'src')).toEqual({ index: 99 })
  })

  it('the same crash without offsets replays items (what the offsets prevent)', async () => {
    const world = createMemoryWorld('memory')
    world.sources.set('in', records(100))
    const store = new LosingCheckpointStore(2)
    await crash(world, single(), store, 'out', 5)
    store.keep = Number.POSITIVE_INFINITY
    await runPipeline(world, single(), { checkpoints: store })
    expect(world.log.get('out')!.length).toBe(130)
  })

  it('a crash and resume writes each item once with two sinks at different points', async () => {
    const world = createMemoryWorld('memory', { offsets: true })
    world.sources.set('in', records(100))
    const store = new LosingCheckpointStore(1)
    const controller = new AbortController()
    // b is slower: the crash comes when a is several batches ahead of b, and both ahead of the checkpoint.
    world.beforeWrite = async (name) => {
      await sleep(name === 'b' ? 10 : 1)
      const a = world.log.get('a')?.length ?? 0
      const b = world.log.get('b')?.length ?? 0
      if (a >= 40 && b >= 20 && a > b) controller.abort(new Error('killed'))
    }
    await runPipeline(world, fanOut(), { checkpoints: store, signal: controller.signal })
    world.beforeWrite = undefined
    const a = world.log.get('a')!.length
    const b = world.log.get('b')!.length
    expect(b).toBeGreaterThanOrEqual(20)
    expect(b).toBeLessThan(a)
    const checkpoint = (await store.load('p1', 'src')) as { index: number } | undefined
    expect(checkpoint?.index ?? -1).toBeLessThan(b - 1)

    store.keep = Number.POSITIVE_INFINITY
    const { summary } = await runPipeline(world, fanOut(), { checkpoints: store })
    expect(summary.status).toBe('completed')
    expect(world.log.get('a')).toEqual(ids(100))
    expect(world.log.get('b')).toEqual(ids(100))
  })

  it('fails, never drops silently, when the source ends before the offset a sink holds', async () => {
    const world = createMemoryWorld('memory', { offsets: true })
    world.sources.set('in', records(30))
    const store = new LosingCheckpointStore(Number.POSITIVE_INFINITY)
    await store.save('p1', 'src', { index: 9 }, 'earlier')
    world.offsets.set('a', new Map([['p1/src/a', { index: 500 }]]))
    const { summary } = await runPipeline(world, fanOut(), { checkpoints: store })
    expect(summary.status).toBe('failed')
    expect(summary.error?.kind).toBe('internal')
    expect(summary.error?.message).toContain(
      'source node src ended without reaching the offset sink node a committed',
    )
    expect(world.log.get('a') ?? []).toEqual([])
  })

  it('passes no offset to a sink written with concurrency above 1, and ignores offsets without resume', async () => {
    const world = createMemoryWorld('memory', { offsets: true })
    world.sources.set('in', records(20))
    const pipeline = single()
    pipeline.nodes[1]!.concurrency = 2
    const warnings: string[] = []
    const collect = (first: unknown, message?: string) => {
      warnings.push(typeof first === 'string' ? first : (message ?? ''))
    }
    const noop = () => {}
    await runPipeline(world, pipeline, {
      logger: { debug: noop, info: noop, error: noop, warn: collect },
    })
    expect(world.offsets.size).toBe(0)
    // Not silently: the run says exactly-once is off, and why.
    expect(warnings).toEqual([
      expect.stringMatching(/sink dst: exactly-once offsets are off because of concurrency 2/),
    ])

    const again = createMemoryWorld('memory', { offsets: true })
    again.sources.set('in', records(20))
    again.offsets.set('out', new Map([['p1/src/dst', { index: 9 }]]))
    await runPipeline(again, single(), { resume: false })
    expect(again.log.get('out')).toEqual(ids(20))
    expect(again.offsets.get('out')?.get('p1/src/dst')).toEqual({ index: 19 })
  })
})
