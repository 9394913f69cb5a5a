import {
  type Data,
  type EmbeddingData,
  type GuardedConnection,
  ProviderError,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clearNamespace,
  itemId,
  listAll,
  openTestEnv,
  type PineconeTestEnv,
  REAL,
  randomSuffix,
  vectorFor,
} from './__fixtures__/pinecone-env.js'
import { pineconeProvider } from './index.js'

const signal = () => new AbortController().signal
const prefix = `nvisy-sink-${randomSuffix()}`
let env: PineconeTestEnv
let connection: GuardedConnection
const namespaces: string[] = []

function ns(name: string): string {
  const full = `${prefix}-${name}`
  namespaces.push(full)
  return full
}

async function errorOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error), `expected a ProviderError, got ${String(error)}`).toBe(
    true,
  )
  return error as ProviderError
}

function embedding(
  i: number,
  dimension: number,
  extra: Partial<EmbeddingData> = {},
): EmbeddingData {
  return {
    kind: 'embedding',
    id: itemId(i),
    values: vectorFor(i, dimension),
    metadata: { n: i },
    ...extra,
  }
}

beforeAll(async () => {
  env = await openTestEnv(
    [
      { name: 'wide', dimension: 768, metric: 'cosine' },
      { name: 'hybrid', dimension: 4, metric: 'dotproduct' },
    ],
    8,
  )
  connection = await pineconeProvider.connect(env.input())
})

afterAll(async () => {
  await connection?.close()
  if (env) {
    for (const name of namespaces) await clearNamespace(await env.index(name))
    await env.close()
  }
})

describe('pinecone sink', () => {
  it('chunks 2500 vectors of 768 dimensions into requests within the service limits', async () => {
    const name = REAL ? env.indexName : 'wide'
    const dimension = REAL ? env.dimension : 768
    const wide = await pineconeProvider.connect(env.input(name))
    const namespace = ns('chunks')
    const before = env.emulator?.requests.length ?? 0
    const batch = Array.from({ length: 2500 }, (_, i) =>
      embedding(i, dimension, { metadata: { n: i, text: `chunk ${i} `.repeat(20) } }),
    )
    const result = await wide.write({ namespace }, batch, { signal: signal() })
    expect(result).toEqual({ written: 2500, failed: [] })
    await env.settle()
    const stored = await listAll(await env.index(namespace, name))
    expect(stored.length).toBe(2500)
    if (env.emulator) {
      const upserts = env.emulator.requests
        .slice(before)
        .filter((r) => r.path.endsWith('/vectors/upsert'))
      // Every request was accepted by the emulator's limits: no 400 and no 413.
      expect(upserts.every((r) => r.status === 200)).toBe(true)
      expect(upserts.every((r) => (r.vectors ?? 0) <= 1000 && r.bytes <= 2 * 1024 * 1024)).toBe(
        true,
      )
      expect(upserts.reduce((sum, r) => sum + (r.vectors ?? 0), 0)).toBe(2500)
      // 768 float values do not fit 1000 to a request: the byte limit split them.
      expect(upserts.length).toBeGreaterThan(3)
    }
    // Values come back as float32, as the service stores them.
    const fetched = await (await env.index(namespace, name)).fetch({ ids: [itemId(7)] })
    expect(fetched.records[itemId(7)]!.values!.map(Math.fround)).toEqual(vectorFor(7, dimension))
    await wide.close()
  })

  it('refuses a dimension mismatch as config before anything is written', async () => {
    const namespace = ns('mismatch')
    const fresh = await pineconeProvider.connect(env.input())
    const before =
      env.emulator?.requests.filter((r) => r.path.endsWith('/vectors/upsert')).length ?? 0
    const wrong = Array.from({ length: 5 }, (_, i) => embedding(i, env.dimension + 1))
    const error = await errorOf(fresh.write({ namespace }, wrong, { signal: signal() }))
    expect(error.kind).toBe('config')
    expect(error.message).toMatch(
      new RegExp(`${env.dimension + 1} dimensions.*dimension ${env.dimension}`),
    )
    const declared = await pineconeProvider.connect(env.input())
    const declaredError = await errorOf(
      declared.write({ namespace, dimension: env.dimension * 2 }, [embedding(1, env.dimension)], {
        signal: signal(),
      }),
    )
    expect(declaredError.kind).toBe('config')
    expect(declaredError.message).toContain('/stream/dimension')
    if (env.emulator) {
      const after = env.emulator.requests.filter((r) => r.path.endsWith('/vectors/upsert')).length
      expect(after).toBe(before)
    }
    expect(await listAll(await env.index(namespace))).toEqual([])
    // After a passing first write, a single wrong-length vector is a data failure alone.
    const ok = await fresh.write(
      { namespace },
      [embedding(1, env.dimension), embedding(2, env.dimension + 3), embedding(3, env.dimension)],
      { signal: signal() },
    )
    expect(ok.written).toBe(2)
    expect(ok.failed.map((f) => [f.index, f.error.kind])).toEqual([[1, 'data']])
    await fresh.close()
    await declared.close()
  })

  it('checks metadata and values, failing each bad vector alone as data', async () => {
    const namespace = ns('metadata')
    const d = env.dimension
    const nan = vectorFor(5, d)
    nan[2] = Number.NaN
    const batch: Data[] = [
      embedding(0, d, { metadata: { title: 'ok', year: 2024, draft: false, tags: ['a', 'b'] } }),
      embedding(1, d, { metadata: { bad: null } }),
      embedding(2, d, { metadata: { nested: { x: 1 } } }),
      embedding(3, d, { metadata: { mixed: ['a', 1] } }),
      embedding(4, d, { metadata: { big: 'x'.repeat(41 * 1024) } }),
      embedding(5, d, { values: nan }),
      embedding(6, d, { values: new Float32Array(vectorFor(6, d)) }),
      { kind: 'embedding', id: 'i'.repeat(513), values: vectorFor(7, d) },
      { kind: 'embedding', id: '', values: vectorFor(8, d) },
      embedding(9, d, { values: new Array(d).fill(0) }),
      embedding(10, d, { sparse: { indices: [1, 2], values: [0.5] } }),
      { kind: 'document', id: 'doc', content: {} },
      embedding(12, d),
    ]
    const result = await connection.write({ namespace }, batch, { signal: signal() })
    expect(result.failed.map((f) => f.index)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11])
    for (const failure of result.failed) expect(failure.error.kind).toBe('data')
    expect(result.failed[0]!.error.message).toMatch(/metadata\.bad is null/)
    expect(result.written).toBe(3)
    await env.settle()
    expect((await listAll(await env.index(namespace))).sort()).toEqual([
      itemId(0),
      itemId(6),
      itemId(12),
    ])
    const fetched = await (await env.index(namespace)).fetch({ ids: [itemId(0)] })
    expect(fetched.records[itemId(0)]!.metadata).toEqual({
      title: 'ok',
      year: 2024,
      draft: false,
      tags: ['a', 'b'],
    })
  })

  it.skipIf(REAL)(
    'isolates a vector the service refuses that the local checks let through',
    async () => {
      const namespace = ns('bisect')
      const d = env.dimension
      // More sparse values than the service allows: only the server knows this limit.
      const tooSparse = {
        indices: Array.from({ length: 3000 }, (_, i) => i),
        values: new Array(3000).fill(0.5),
      }
      const batch = Array.from({ length: 20 }, (_, i) =>
        embedding(i, d, i === 13 ? { sparse: tooSparse } : {}),
      )
      const result = await connection.write({ namespace }, batch, { signal: signal() })
      expect(result.written).toBe(19)
      expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[13, 'data']])
      expect(result.failed[0]!.error.message).toMatch(/non-zero values/)
      expect((await listAll(await env.index(namespace))).length).toBe(19)
    },
  )

  it('round-trips sparse values and reads them back', async () => {
    const name = REAL ? env.indexName : 'hybrid'
    const dimension = REAL ? env.dimension : 4
    const hybrid = await pineconeProvider.connect(env.input(name))
    const namespace = ns('sparse')
    const batch = Array.from({ length: 30 }, (_, i) =>
      embedding(i, dimension, {
        sparse: { indices: [i, i + 100, 4_000_000_000], values: [0.5, 0.25, i + 1] },
      }),
    )
    expect(await hybrid.write({ namespace }, batch, { signal: signal() })).toEqual({
      written: 30,
      failed: [],
    })
    await env.settle()
    const read = (await readAll(hybrid, { namespace, pageSize: 7 })).map(
      (item) => item.data as EmbeddingData,
    )
    expect(read.map((item) => item.id)).toEqual(batch.map((item) => item.id))
    expect((read[4]!.values as number[]).map(Math.fround)).toEqual(vectorFor(4, dimension))
    expect({ ...read[4], values: [] }).toEqual({
      kind: 'embedding',
      id: itemId(4),
      values: [],
      sparse: { indices: [4, 104, 4_000_000_000], values: [0.5, 0.25, 5] },
      metadata: { n: 4 },
    })
    await hybrid.close()
  })

  it('deletes by id, in chunks of at most 1000, and is idempotent', async () => {
    const namespace = ns('delete')
    const d = env.dimension
    const batch = Array.from({ length: 1200 }, (_, i) => embedding(i, d))
    expect((await connection.write({ namespace }, batch, { signal: signal() })).written).toBe(1200)
    const ids = batch.filter((_, i) => i % 2 === 0).map((item) => item.id)
    const result = await connection.delete({ namespace }, [...ids, ''], { signal: signal() })
    expect(result.written).toBe(600)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[600, 'data']])
    expect((await connection.delete({ namespace }, ids, { signal: signal() })).failed).toEqual([])
    await env.settle()
    const left = await listAll(await env.index(namespace))
    expect(left.length).toBe(600)
    expect(left.every((id) => Number(id.slice(5)) % 2 === 1)).toBe(true)
  })
})
