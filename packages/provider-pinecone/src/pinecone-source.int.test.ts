import {
  type EmbeddingData,
  type GuardedConnection,
  ProviderError,
  type ReadItem,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clearNamespace,
  itemId,
  openTestEnv,
  type PineconeTestEnv,
  REAL,
  randomSuffix,
  vectorFor,
} from './__fixtures__/pinecone-env.js'
import { pineconeProvider } from './index.js'

const signal = () => new AbortController().signal
const namespace = `nvisy-source-${randomSuffix()}`
let env: PineconeTestEnv
let connection: GuardedConnection

function collect(conn: GuardedConnection, stream: unknown, after?: unknown): Promise<ReadItem[]> {
  return readAll(conn, stream, { after })
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

beforeAll(async () => {
  env = await openTestEnv()
  connection = await pineconeProvider.connect(env.input())
  const index = await env.index(namespace)
  const ids = [
    ...Array.from({ length: 45 }, (_, i) => `a/${String(i).padStart(3, '0')}`),
    ...Array.from({ length: 30 }, (_, i) => `b/${String(i).padStart(3, '0')}`),
    'b0',
    'é',
    '\u{1F600}',
  ]
  await index.upsert({
    records: ids.map((id, i) => ({ id, values: vectorFor(i, env.dimension), metadata: { i } })),
  })
  await env.settle()
})

afterAll(async () => {
  await connection?.close()
  if (env) {
    await clearNamespace(await env.index(namespace))
    await env.close()
  }
})

describe('pinecone source', () => {
  it('reads every id in byte order across pages, with values and metadata', async () => {
    const items = await collect(connection, { namespace, pageSize: 10 })
    const ids = items.map((item) => (item.data as EmbeddingData).id)
    expect(ids.length).toBe(78)
    expect(ids).toEqual([...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
    expect(ids.slice(-3)).toEqual(['b0', 'é', '\u{1F600}'])
    const first = items[0]!.data as EmbeddingData
    expect(first.metadata).toEqual({ i: 0 })
    expect(first.values.length).toBe(env.dimension)
  })

  it('reads a prefix and resumes exactly from any item, also across pages', async () => {
    const stream = { namespace, prefix: 'b/', pageSize: 7 }
    const all = await collect(connection, stream)
    expect(all.map((item) => (item.data as EmbeddingData).id)).toEqual(
      Array.from({ length: 30 }, (_, i) => `b/${String(i).padStart(3, '0')}`),
    )
    for (const k of [0, 6, 7, 13, 28, 29]) {
      const rest = await collect(connection, stream, JSON.parse(JSON.stringify(all[k]!.context)))
      expect(rest.map((item) => (item.data as EmbeddingData).id)).toEqual(
        all.slice(k + 1).map((item) => (item.data as EmbeddingData).id),
      )
    }
  })

  it('yields Float32Array values when asked', async () => {
    const items = await collect(connection, { namespace, prefix: 'a/000' })
    const values = (items[0]!.data as EmbeddingData).values
    expect(Array.isArray(values)).toBe(true)
    const asFloat = await collect(connection, { namespace, prefix: 'a/000', values: 'float32' })
    expect((asFloat[0]!.data as EmbeddingData).values).toBeInstanceOf(Float32Array)
    expect([...(asFloat[0]!.data as EmbeddingData).values]).toEqual(vectorFor(0, env.dimension))
  })

  it.skipIf(REAL)('connects by host alone and discovers namespaces', async () => {
    const byHost = await pineconeProvider.connect({
      credentials: { apiKey: env.apiKey },
      params: { host: env.emulator!.hostOf('main'), maxRetries: 0 },
    })
    await byHost.check()
    expect((await collect(byHost, { namespace, prefix: 'b0' })).length).toBe(1)
    const streams = await byHost.discover()
    expect(streams.map((s) => s.stream)).toContainEqual({ namespace })
    await byHost.close()
  })

  it('classifies a missing index as not_found and neither index nor host as config', async () => {
    const input = env.input()
    const missing = await pineconeProvider.connect({
      ...input,
      params: { ...(input.params as object), index: `missing-${randomSuffix()}` },
    })
    expect((await errorOf(missing.check())).kind).toBe('not_found')
    await missing.close()
    const none = await errorOf(
      pineconeProvider.connect({ credentials: input.credentials, params: {} }),
    )
    expect(none.kind).toBe('config')
    expect(none.issues?.[0]?.path).toBe('/params/index')
  })

  it.skipIf(REAL)('classifies 429 with its delay, 5xx as transient, 401 as auth', async () => {
    const emulator = env.emulator!
    emulator.failNext({ status: 429, path: '/vectors/list', retryAfterSeconds: 7 })
    const limited = await errorOf(collect(connection, { namespace }))
    expect(limited.kind).toBe('rate_limited')
    expect(limited.retryAfterMs).toBe(7000)
    expect(limited.message).toContain('429')

    emulator.failNext({ status: 503, path: '/vectors/fetch' })
    expect((await errorOf(collect(connection, { namespace }))).kind).toBe('transient')
    emulator.failNext({ status: 500, path: '/vectors/upsert' })
    const write = await errorOf(
      connection.write(
        { namespace },
        [{ kind: 'embedding', id: itemId(1), values: vectorFor(1, env.dimension) }],
        {
          signal: signal(),
        },
      ),
    )
    expect(write.kind).toBe('transient')
    emulator.failNext({ status: 403, path: '/describe_index_stats' })
    expect((await errorOf(connection.check())).kind).toBe('auth')

    const wrongKey = await pineconeProvider.connect({
      ...env.input(),
      credentials: { apiKey: 'wrong-key-123' },
    })
    const auth = await errorOf(wrongKey.check())
    expect(auth.kind).toBe('auth')
    expect(JSON.stringify(auth)).not.toContain('wrong-key-123')
    await wrongKey.close()
  })
})
