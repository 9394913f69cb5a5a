// The provider the defineProvider and connection-guard tests share: "acme-db", a record
// source and sink over an in-memory connection each test adjusts, with secrets in its
// credentials and params so every error can be checked for leaks.
import { type Static, Type } from '@sinclair/typebox'
import { expect } from 'vitest'
import type { ConnectContext, Connection, ReadItem, WriteResult } from '../contract.js'
import { SPECIFICATION_VERSION } from '../contract.js'
import type { Data, RecordData } from '../data.js'
import { defineProvider } from '../define-provider.js'
import { ProviderError } from '../errors.js'
import type { Logger } from '../logger.js'
import { Secret } from '../schema.js'
import { VERSION } from '../version.js'

export const PASSWORD = 'S3cr3t-pa55word-value'
export const URL_PASSWORD = 'p@ss-w0rd/xyz'
export const CONNECTION_URL = `postgres://app:${encodeURIComponent(URL_PASSWORD)}@db.internal:5432/app`
export const API_TOKEN = 'tok_live_9f8e7d6c5b4a'

export const Credentials = Type.Union([
  Type.Object(
    { user: Type.String(), password: Secret(Type.String({ minLength: 8 })) },
    { additionalProperties: false },
  ),
  Type.Object({ connectionString: Secret(Type.String()) }, { additionalProperties: false }),
])
export const Params = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    apiToken: Type.Optional(Secret(Type.String())),
  },
  { additionalProperties: false },
)
export const StreamSchema = Type.Object(
  {
    table: Type.String({ minLength: 1 }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  },
  { additionalProperties: false },
)
export const ContextSchema = Type.Object(
  { id: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)
export const SinkStreamSchema = Type.Object(
  { table: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
)

export type Stream = Static<typeof StreamSchema>
export type Context = Static<typeof ContextSchema>
export type SinkStream = Static<typeof SinkStreamSchema>

export const record = (id: number): RecordData => ({ kind: 'record', values: { id } })

/** An in-memory connection whose behaviour each test adjusts. */
export class FakeConnection implements Connection<Stream, Context, SinkStream> {
  rows = Array.from({ length: 5 }, (_, i) => i + 1)
  checkError: unknown
  /** Throw this while reading, after the item with this id. */
  readError: { afterId: number; error: unknown } | undefined
  readCalls: { stream: Stream; after: Context | undefined }[] = []
  readReturned = 0
  writes: { stream: SinkStream; batch: readonly Data[] }[] = []
  writeResult: ((batch: readonly Data[]) => WriteResult) | undefined
  closeCalls = 0
  closeError: unknown
  onRead: ((id: number) => void) | undefined
  /** Yield this instead of the row's item (to play a buggy source). */
  itemFor: ((id: number) => unknown) | undefined
  /** check() never settles. */
  checkHangs = false

  constructor(
    readonly input: { credentials: Static<typeof Credentials>; params: Static<typeof Params> },
    readonly context: ConnectContext,
  ) {}

  async check() {
    if (this.checkHangs) await new Promise(() => {})
    if (this.checkError !== undefined) throw this.checkError
  }

  async discover() {
    return [{ name: 'users', type: 'table', data: 'record' as const, stream: { table: 'users' } }]
  }

  read(
    stream: Stream,
    options: { after?: Context | undefined; signal: AbortSignal },
  ): AsyncIterable<ReadItem<Context>> {
    this.readCalls.push({ stream, after: options.after })
    const self = this
    return (async function* () {
      try {
        for (const id of self.rows) {
          if (options.after && id <= options.after.id) continue
          self.onRead?.(id)
          yield (self.itemFor?.(id) as ReadItem<Context> | undefined) ?? {
            data: record(id),
            context: { id },
          }
          if (self.readError && self.readError.afterId === id) throw self.readError.error
        }
      } finally {
        self.readReturned++
      }
    })()
  }

  async write(stream: SinkStream, batch: readonly Data[]): Promise<WriteResult> {
    this.writes.push({ stream, batch })
    return this.writeResult?.(batch) ?? { written: batch.length, failed: [] }
  }

  async delete(_stream: SinkStream, ids: readonly string[]): Promise<WriteResult> {
    return { written: ids.length, failed: [] }
  }

  async close() {
    this.closeCalls++
    if (this.closeError !== undefined) throw this.closeError
  }
}

export function makeProvider(
  overrides: {
    classifyError?: (error: unknown) => ProviderError | undefined
    connectError?: unknown
  } = {},
) {
  const connections: FakeConnection[] = []
  const provider = defineProvider({
    id: 'acme-db',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Acme DB',
    description: 'A test database',
    credentials: Credentials,
    params: Params,
    source: {
      data: 'record',
      stream: StreamSchema,
      context: ContextSchema,
      incremental: true,
      ordering: 'primary key',
    },
    sink: { data: 'record', stream: SinkStreamSchema, idempotentBy: 'primary key', deletes: true },
    discover: true,
    classifyError:
      overrides.classifyError ??
      ((error) => {
        const code = (error as { code?: unknown })?.code
        if (code === '28P01')
          return new ProviderError({
            kind: 'auth',
            message: 'authentication failed',
            code,
            cause: error,
          })
        if (code === '23505')
          return new ProviderError({ kind: 'data', message: 'duplicate key', code, cause: error })
        return undefined
      }),
    async connect(input, context) {
      if (overrides.connectError !== undefined) throw overrides.connectError
      const connection = new FakeConnection(input, context)
      connections.push(connection)
      return connection
    },
  })
  return { provider, connections }
}

export const goodInput = {
  credentials: { user: 'app', password: PASSWORD },
  params: { host: 'db.internal', apiToken: API_TOKEN },
}
export const urlInput = {
  credentials: { connectionString: CONNECTION_URL },
  params: { host: 'db.internal' },
}

export async function connected(
  input: { credentials: unknown; params: unknown } = goodInput,
  logger?: Logger,
) {
  const made = makeProvider()
  const connection = await made.provider.connect(input, logger ? { logger } : {})
  return { ...made, connection, inner: made.connections[0]! }
}

export async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error)).toBe(true)
  return error as ProviderError
}

/** Every text an error exposes: message, stack, JSON, and the same for each cause. */
export function everyText(error: unknown): string {
  const parts: string[] = []
  const seen = new Set<unknown>()
  for (let e: any = error; e !== undefined && e !== null && !seen.has(e); e = e.cause) {
    seen.add(e)
    if (typeof e === 'object') {
      parts.push(String(e.message), String(e.stack))
      try {
        parts.push(JSON.stringify(e))
      } catch {}
      for (const key of Object.keys(e)) parts.push(`${key}=${JSON.stringify(e[key]) ?? ''}`)
    } else parts.push(String(e))
  }
  return parts.join('\n')
}

export function expectNoSecret(error: unknown) {
  const text = everyText(error)
  for (const secret of [
    PASSWORD,
    URL_PASSWORD,
    encodeURIComponent(URL_PASSWORD),
    CONNECTION_URL,
    API_TOKEN,
  ]) {
    expect(text).not.toContain(secret)
  }
}

export async function readAll<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}
