// In-memory providers for the dispatcher tests: a source and a sink that need a secret token.
import {
  type Data,
  defineProvider,
  type Provider,
  ProviderError,
  Secret,
  SPECIFICATION_VERSION,
  sleep,
  Type,
} from '@nvisy/provider-core'

export interface TestWorld {
  provider: Provider
  /** The token connections must present. */
  token: string
  sources: Map<string, Data[]>
  sinks: Map<string, Map<string, Data>>
  /** Delay before each item is read, ms: makes a run last long enough to cancel it. */
  readDelayMs: number
  connects: number
  closes: number
}

export function createTestWorld(token: string, id = 'vaulted'): TestWorld {
  const world: TestWorld = {
    provider: undefined as unknown as Provider,
    token,
    sources: new Map(),
    sinks: new Map(),
    readDelayMs: 0,
    connects: 0,
    closes: 0,
  }
  const StreamSchema = Type.Object(
    { name: Type.String({ minLength: 1 }) },
    { additionalProperties: false },
  )
  world.provider = defineProvider({
    id,
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: Type.Object(
      { token: Secret(Type.String({ minLength: 1 })) },
      { additionalProperties: false },
    ),
    params: Type.Object({ region: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    discover: true,
    source: {
      data: 'record',
      stream: StreamSchema,
      context: Type.Object(
        { index: Type.Integer({ minimum: 0 }) },
        { additionalProperties: false },
      ),
      ordering: 'position in the list',
    },
    sink: { data: 'record', stream: StreamSchema, idempotentBy: 'id' },
    async connect({ credentials }) {
      world.connects++
      if (credentials.token !== world.token) {
        // The driver's own message quotes the token; the runtime must redact it.
        throw new ProviderError({ kind: 'auth', message: `token ${credentials.token} was refused` })
      }
      return {
        async check() {},
        async discover() {
          return [...world.sources.keys()].map((name) => ({
            name,
            type: 'list',
            data: 'record' as const,
            stream: { name },
          }))
        },
        async *read(stream, { after, signal }) {
          const items = world.sources.get(stream.name) ?? []
          for (
            let index = after === undefined ? 0 : after.index + 1;
            index < items.length;
            index++
          ) {
            if (world.readDelayMs > 0) await sleep(world.readDelayMs, signal)
            if (signal.aborted) return
            yield { data: items[index]!, context: { index } }
          }
        },
        async write(stream, batch) {
          let sink = world.sinks.get(stream.name)
          if (!sink) {
            sink = new Map()
            world.sinks.set(stream.name, sink)
          }
          for (const item of batch) {
            if (item.kind === 'record') sink.set(String(item.values.id), item)
          }
          return { written: batch.length, failed: [] }
        },
        async close() {
          world.closes++
        },
      }
    },
  }) as unknown as Provider
  return world
}

export function records(count: number, from = 0): Data[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'record' as const,
    values: { id: from + i, name: `row ${from + i}` },
  }))
}
