import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  createMemoryWorld,
  keyOf,
  memoryNode,
  records,
  simplePipeline,
} from '../__fixtures__/memory-provider.js'
import { runPipeline } from '../__fixtures__/run.js'
import type { Pipeline } from '../pipeline-types.js'

function refusing(count: number, refused: (id: number) => boolean, stream = 'out') {
  const world = createMemoryWorld()
  world.sources.set('in', records(count))
  world.beforeWrite = (name, batch) =>
    name === stream ? batch.flatMap((item, i) => (refused(Number(keyOf(item))) ? [i] : [])) : []
  return world
}

function withDeadLetter(options: Pipeline['options'] = {}): Pipeline {
  return {
    id: 'p1',
    nodes: [
      memoryNode('src', 'source', { name: 'in' }),
      memoryNode('dst', 'sink', { name: 'out' }, { deadLetter: 'dlq', batch: { maxItems: 8 } }),
      memoryNode('dlq', 'sink', { name: 'dead', kind: 'document' }),
    ],
    edges: [{ from: 'src', to: 'dst' }],
    options,
  }
}

describe('run outcomes', () => {
  it('fails the run on the first refused item by default (no budget, no dead-letter sink)', async () => {
    const world = refusing(100, (id) => id % 10 === 3)
    const { summary, events } = await runPipeline(
      world,
      simplePipeline({}, { batch: { maxItems: 10 } }),
    )
    expect(summary.status).toBe('failed')
    expect(summary.error).toMatchObject({ kind: 'data' })
    expect(summary.error?.message).toContain('1 item refused')
    expect(summary.error?.message).toContain('node dst')
    expect(summary.stats.refusedItems).toBe(1)
    expect(events.at(-1)).toMatchObject({ type: 'failed' })
    expect(events.some((e) => e.type === 'completed')).toBe(false)
  })

  it('fails the run when a conversion refuses an item by default', async () => {
    const world = createMemoryWorld()
    world.sources.set('in', [
      { kind: 'message', id: 'a', payload: new TextEncoder().encode('{"x":1}') },
      { kind: 'message', id: 'b', payload: new TextEncoder().encode('not json') },
    ])
    const pipeline: Pipeline = {
      id: 'p1',
      nodes: [
        memoryNode('src', 'source', { name: 'in', kind: 'message' }),
        memoryNode('dst', 'sink', { name: 'out', kind: 'document' }),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
    const { summary } = await runPipeline(world, pipeline)
    expect(summary.status).toBe('failed')
    expect(summary.error?.message).toContain('refused')
  })

  it('completes when every refused item reached the dead-letter sink', async () => {
    const world = refusing(40, (id) => id % 10 === 3)
    const { summary, events } = await runPipeline(world, withDeadLetter())
    expect(summary.status).toBe('completed')
    expect([...world.sinks.get('dead')!.keys()].sort()).toEqual(['13', '23', '3', '33'])
    expect(world.sinks.get('out')!.size).toBe(36)
    expect(summary.stats).toMatchObject({ failedItems: 4, deadLettered: 4, refusedItems: 0 })
    expect(events.at(-1)).toMatchObject({ type: 'completed' })
  })

  it('fails when the dead-letter sink refuses an item too', async () => {
    const world = createMemoryWorld()
    world.sources.set('in', records(40))
    world.beforeWrite = (name, batch) =>
      name === 'out'
        ? batch.flatMap((item, i) => (Number(keyOf(item)) % 10 === 3 ? [i] : []))
        : name === 'dead'
          ? batch.flatMap((item, i) => (keyOf(item) === '23' ? [i] : []))
          : []
    const { summary } = await runPipeline(world, withDeadLetter())
    expect(summary.status).toBe('failed')
    expect(summary.stats.refusedItems).toBe(1)
    expect(summary.error?.message).toContain('dlq')
  })

  it('counts an item as refused when the dead-letter write fails whole', async () => {
    const make = () => {
      const world = refusing(40, (id) => id === 3 || id === 13)
      const inner = world.beforeWrite!
      world.beforeWrite = (name, batch, call) => {
        if (name === 'dead') throw new ProviderError({ kind: 'config', message: 'dlq closed' })
        return inner(name, batch, call)
      }
      return world
    }
    const failed = await runPipeline(make(), withDeadLetter())
    expect(failed.summary.status).toBe('failed')
    expect(failed.summary.error?.message).toContain('dead-letter sink dlq did not take it either')
    const partial = await runPipeline(make(), withDeadLetter({ failureBudget: 5 }))
    expect(partial.summary.status).toBe('partial')
    expect(partial.summary.stats).toMatchObject({ refusedItems: 2, deadLettered: 0 })
  })

  it('ends partial, never completed, when refused items stay within the budget', async () => {
    const world = refusing(100, (id) => id === 5 || id === 50)
    const { summary, events } = await runPipeline(world, simplePipeline({ failureBudget: 2 }))
    expect(summary.status).toBe('partial')
    expect(summary.stats).toMatchObject({ refusedItems: 2, failedItems: 2, deadLettered: 0 })
    expect(world.sinks.get('out')!.size).toBe(98)
    const last = events.at(-1)
    expect(last).toMatchObject({ type: 'partial', stats: { refusedItems: 2 } })
    expect(events.some((e) => e.type === 'completed')).toBe(false)

    const over = refusing(100, (id) => id === 5 || id === 50 || id === 70)
    const spent = await runPipeline(over, simplePipeline({ failureBudget: 2 }))
    expect(spent.summary.status).toBe('failed')
    expect(spent.summary.error?.message).toContain('3 items refused, the pipeline allows 2')
  })

  it('lets every refused item through with an explicit null budget, and says partial', async () => {
    const world = refusing(100, (id) => id % 2 === 0)
    const { summary } = await runPipeline(world, simplePipeline({ failureBudget: null }))
    expect(summary.status).toBe('partial')
    expect(summary.stats.refusedItems).toBe(50)
    expect(world.sinks.get('out')!.size).toBe(50)
  })

  it('a clean run is completed with zero refused and dead-lettered items', async () => {
    const world = refusing(20, () => false)
    const { summary } = await runPipeline(world, simplePipeline())
    expect(summary.status).toBe('completed')
    expect(summary.stats).toMatchObject({ failedItems: 0, refusedItems: 0, deadLettered: 0 })
  })
})
