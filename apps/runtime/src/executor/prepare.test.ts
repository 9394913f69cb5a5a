import type { StreamSchema } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { createMemoryWorld, memoryNode, records } from '../__fixtures__/memory-provider.js'
import { runPipeline } from '../__fixtures__/run.js'
import type { Pipeline } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import { checkPipeline } from './check.js'

const SCHEMA: StreamSchema = {
  system: 'memory',
  columns: [
    { name: 'id', nativeType: 'bigint', type: { type: 'integer', bits: 64 }, nullable: false },
    { name: 'name', nativeType: 'text', type: { type: 'text' }, nullable: true },
  ],
  primaryKey: ['id'],
}

function world() {
  const w = createMemoryWorld('memory', { describe: true, prepare: true })
  w.sources.set('in', records(10))
  w.schemas.set('in', SCHEMA)
  return w
}

function copy(sinkStream: Record<string, unknown> = { name: 'out' }): Pipeline {
  return {
    id: 'p1',
    nodes: [memoryNode('src', 'source', { name: 'in' }), memoryNode('dst', 'sink', sinkStream)],
    edges: [{ from: 'src', to: 'dst' }],
  }
}

describe('destinations prepared before the run reads', () => {
  it("creates the sink's destination from the source's described schema, before any read", async () => {
    const w = world()
    const { summary, events } = await runPipeline(w, copy())
    expect(summary.status).toBe('completed')
    expect(w.prepares).toEqual([{ stream: 'out', schema: SCHEMA, dryRun: false, readsBefore: 0 }])
    expect(events).toContainEqual({
      type: 'prepared',
      nodeId: 'dst',
      existed: false,
      actions: ['CREATE out (id integer, name text)'],
    })
    expect(w.sinks.get('out')!.size).toBe(10)
  })

  it('fails before reading when the destination is missing and will not be created', async () => {
    const w = world()
    const { summary, events } = await runPipeline(w, copy({ name: 'out', create: 'never' }))
    expect(summary.status).toBe('failed')
    expect(summary.error).toMatchObject({ kind: 'not_found' })
    expect(summary.error?.message).toContain('sink node dst')
    expect(w.readCount.get('in') ?? 0).toBe(0)
    expect(events.some((e) => e.type === 'prepared')).toBe(false)
  })

  it("gives a record -> document sink the source's columns and key (a document store indexes by them)", async () => {
    const w = world()
    const pipeline = copy({ name: 'docs', kind: 'document' })
    const { summary } = await runPipeline(w, pipeline)
    expect(summary.status).toBe('completed')
    expect(w.prepares).toEqual([{ stream: 'docs', schema: SCHEMA, dryRun: false, readsBefore: 0 }])
    expect(w.sinks.get('docs')!.size).toBe(10)
  })

  it('gives a document -> record sink the schema of its declared columns', async () => {
    const w = world()
    w.sources.set('docs', [{ kind: 'document', id: '1', content: { n: 5 } }])
    const pipeline: Pipeline = {
      id: 'p1',
      nodes: [
        memoryNode('src', 'source', { name: 'docs', kind: 'document' }),
        memoryNode(
          'dst',
          'sink',
          { name: 'rows' },
          {
            convert: {
              columns: [
                { name: 'id', type: { type: 'text' }, field: '$id', nullable: false },
                { name: 'n', type: { type: 'integer', bits: 32 } },
              ],
              key: ['id'],
            },
          },
        ),
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
    const { summary } = await runPipeline(w, pipeline)
    expect(summary.status).toBe('completed')
    expect(w.prepares[0]!.schema).toEqual({
      system: 'declared',
      columns: [
        { name: 'id', nativeType: 'text', type: { type: 'text' }, nullable: false },
        {
          name: 'n',
          nativeType: 'integer{"bits":32}',
          type: { type: 'integer', bits: 32 },
          nullable: true,
        },
      ],
      primaryKey: ['id'],
    })
    expect(w.sinks.get('rows')!.get('1')).toEqual({ kind: 'record', values: { id: '1', n: 5 } })
  })
})

describe('checkPipeline', () => {
  const check = (w: ReturnType<typeof world>, pipeline: unknown) =>
    checkPipeline({
      pipeline,
      registry: new MapProviderRegistry([w.provider]),
      resolveConnection: async (node) => ({
        credentials: node.connection.credentials ?? {},
        params: node.connection.params,
      }),
      signal: new AbortController().signal,
    })

  it('returns no issue for a pipeline that would run, and changes nothing (dry run)', async () => {
    const w = world()
    expect(await check(w, copy())).toEqual([])
    expect(w.prepares).toEqual([{ stream: 'out', schema: SCHEMA, dryRun: true, readsBefore: 0 }])
    expect(w.sinks.has('out')).toBe(false)
  })

  it('reports offline issues first, without connecting', async () => {
    const w = world()
    const bad = copy()
    bad.edges = []
    const issues = await check(w, bad)
    expect(issues.map((i) => i.rule)).toContain('edge')
    expect(w.connects).toBe(0)
  })

  it('reports an auth failure and a missing destination that will not be created, by node path', async () => {
    const w = world()
    w.badTokens.add('wrong')
    const pipeline = copy({ name: 'out', create: 'never' })
    pipeline.nodes[0]!.connection = { params: {}, credentials: { token: 'wrong' } }
    const issues = await check(w, pipeline)
    expect(issues).toEqual([
      expect.objectContaining({ path: '/nodes/0/connection', rule: 'auth' }),
      expect.objectContaining({ path: '/nodes/1/stream', rule: 'not_found' }),
    ])
    expect(issues[1]!.message).toContain("create is 'never'")
    expect(JSON.stringify(issues)).not.toContain('wrong')
  })

  it('reports a source that cannot describe the stream a sink needs', async () => {
    const w = world()
    w.schemas.clear()
    const issues = await check(w, copy())
    expect(issues).toEqual([
      expect.objectContaining({ path: '/nodes/0/stream', rule: 'not_found' }),
    ])
  })
})
