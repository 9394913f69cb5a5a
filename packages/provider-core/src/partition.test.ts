import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import { MAX_PARTITIONS, type PartitionPlan } from './contract.js'
import { defineProvider } from './define-provider.js'
import { ProviderError } from './errors.js'
import { Secret } from './schema.js'
import { VERSION } from './version.js'

const Stream = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    from: Type.Optional(Type.Integer({ minimum: 0 })),
    to: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
const Context = Type.Object({ n: Type.Integer() }, { additionalProperties: false })

const SECRET = 'partition-secret-value-123'

/** A source of the numbers 0..size-1 that splits them into ranges (or plays a broken splitter). */
function makeProvider(
  options: {
    declare?: boolean
    implement?: boolean
    size?: number
    plan?: (stream: { name: string }, count: number) => unknown
  } = {},
) {
  const size = options.size ?? 10
  const calls: { stream: unknown; count: number }[] = []
  const provider = defineProvider({
    id: 'ranges',
    version: VERSION,
    specificationVersion: 'v1',
    credentials: Type.Object({ token: Secret(Type.String()) }),
    params: Type.Object({}),
    source: {
      data: 'record',
      stream: Stream,
      context: Context,
      ordering: 'number',
      partition: options.declare ?? true,
    },
    async connect() {
      return {
        async check() {},
        async *read(stream: { from?: number; to?: number }, { after }: { after?: { n: number } }) {
          for (let n = Math.max(stream.from ?? 0, after ? after.n + 1 : 0); n < size; n++) {
            if (stream.to !== undefined && n >= stream.to) return
            yield { data: { kind: 'record' as const, values: { n } }, context: { n } }
          }
        },
        ...(options.implement === false
          ? {}
          : {
              async partition(stream: { name: string }, { count }: { count: number }) {
                calls.push({ stream, count })
                if (options.plan) return options.plan(stream, count) as PartitionPlan<any>
                const step = Math.ceil(size / count)
                return {
                  partitions: Array.from({ length: count }, (_, i) => ({
                    ...stream,
                    ...(i > 0 ? { from: i * step } : {}),
                    ...(i < count - 1 ? { to: (i + 1) * step } : {}),
                  })),
                }
              },
            }),
        async close() {},
      }
    },
  })
  return { provider, calls }
}

const input = { credentials: { token: SECRET }, params: {} }

async function readAll(
  connection: Awaited<ReturnType<ReturnType<typeof makeProvider>['provider']['connect']>>,
  stream: { name: string; from?: number; to?: number },
): Promise<number[]> {
  const out: number[] = []
  for await (const item of connection.read(stream, { signal: new AbortController().signal }))
    out.push((item.context as { n: number }).n)
  return out
}

describe('partition capability', () => {
  it('is declared in the capabilities and the catalog only when the source says so', () => {
    expect(makeProvider().provider.capabilities.partition).toBe(true)
    expect(makeProvider({ declare: false }).provider.capabilities.partition).toBe(false)
    expect(makeProvider().provider.describe().capabilities.partition).toBe(true)
  })

  it('returns validated partitions that together read the stream exactly', async () => {
    const { provider } = makeProvider()
    const connection = await provider.connect(input)
    const plan = await connection.partition({ name: 's' }, { count: 3 })
    expect(plan.partitions).toHaveLength(3)
    expect(plan.reason).toBeUndefined()
    const parts = await Promise.all(plan.partitions.map((p) => readAll(connection, p)))
    expect(parts.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(parts.every((p) => p.length > 0)).toBe(true)
  })

  it('a provider without the capability gives the stream as one partition, with a reason', async () => {
    for (const options of [{ declare: false }, { declare: true, implement: false }]) {
      const { provider, calls } = makeProvider(options)
      const connection = await provider.connect(input)
      const plan = await connection.partition({ name: 's' }, { count: 4 })
      expect(plan.partitions).toEqual([{ name: 's' }])
      expect(plan.reason).toMatch(/ranges cannot split a stream/)
      expect(calls).toEqual([])
    }
  })

  it('one partition asked for is the stream itself, without asking the provider', async () => {
    const { provider, calls } = makeProvider()
    const connection = await provider.connect(input)
    expect(await connection.partition({ name: 's' }, { count: 1 })).toEqual({
      partitions: [{ name: 's' }],
    })
    expect(calls).toEqual([])
  })

  it('refuses a count that is not an integer from 1 to MAX_PARTITIONS, naming it', async () => {
    const { provider, calls } = makeProvider()
    const connection = await provider.connect(input)
    for (const count of [0, -1, 2.5, MAX_PARTITIONS + 1, Number.NaN, '4' as unknown as number]) {
      const error = await connection.partition({ name: 's' }, { count }).catch((e: unknown) => e)
      expect(ProviderError.isInstance(error)).toBe(true)
      expect((error as ProviderError).kind).toBe('config')
      expect((error as ProviderError).message).toContain('partition count')
      expect((error as ProviderError).issues?.[0]?.path).toBe('/count')
    }
    expect(calls).toEqual([])
  })

  it('refuses invalid stream settings before the provider sees them', async () => {
    const { provider, calls } = makeProvider()
    const connection = await provider.connect(input)
    const error = await connection
      .partition({ name: '' }, { count: 2 })
      .catch((e: unknown) => e as ProviderError)
    expect((error as ProviderError).kind).toBe('config')
    expect((error as ProviderError).issues?.[0]?.path).toBe('/stream/name')
    expect(calls).toEqual([])
  })

  it('a provider returning too many, none, or invalid partitions fails as internal, without the secret', async () => {
    const broken = [
      () => ({ partitions: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] }),
      () => ({ partitions: [] }),
      () => ({}),
      () => ({ partitions: [{ name: 'a' }, { name: 'b', from: -1, token: SECRET }] }),
    ]
    for (const plan of broken) {
      const { provider } = makeProvider({ plan })
      const connection = await provider.connect(input)
      const error = await connection
        .partition({ name: 's' }, { count: 2 })
        .catch((e: unknown) => e as ProviderError)
      expect(ProviderError.isInstance(error)).toBe(true)
      expect((error as ProviderError).kind).toBe('internal')
      expect((error as ProviderError).providerId).toBe('ranges')
      expect((error as ProviderError).operation).toBe('partition')
      expect(JSON.stringify((error as ProviderError).toJSON())).not.toContain(SECRET)
    }
  })

  it("keeps the provider's reason for fewer partitions", async () => {
    const { provider } = makeProvider({
      plan: (stream) => ({ partitions: [stream], reason: 'the table is empty' }),
    })
    const connection = await provider.connect(input)
    expect(await connection.partition({ name: 's' }, { count: 8 })).toEqual({
      partitions: [{ name: 's' }],
      reason: 'the table is empty',
    })
  })
})
