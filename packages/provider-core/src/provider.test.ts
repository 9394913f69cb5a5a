import { type Static, Type } from '@sinclair/typebox'
import { describe, expect, it, vi } from 'vitest'
import type { Data, RecordData } from './data.js'
import { ProviderError } from './errors.js'
import { type Logger, memoryLogger } from './logger.js'
import {
  type ConnectContext,
  type Connection,
  defineProvider,
  type ReadItem,
  SPECIFICATION_VERSION,
  type WriteResult,
} from './provider.js'
import { REDACTED } from './redact.js'
import { Secret } from './schema.js'
import { VERSION } from './version.js'

const PASSWORD = 'S3cr3t-pa55word-value'
const URL_PASSWORD = 'p@ss-w0rd/xyz'
const CONNECTION_URL = `postgres://app:${encodeURIComponent(URL_PASSWORD)}@db.internal:5432/app`
const API_TOKEN = 'tok_live_9f8e7d6c5b4a'

const Credentials = Type.Union([
  Type.Object(
    { user: Type.String(), password: Secret(Type.String({ minLength: 8 })) },
    { additionalProperties: false },
  ),
  Type.Object({ connectionString: Secret(Type.String()) }, { additionalProperties: false }),
])
const Params = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    apiToken: Type.Optional(Secret(Type.String())),
  },
  { additionalProperties: false },
)
const StreamSchema = Type.Object(
  {
    table: Type.String({ minLength: 1 }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  },
  { additionalProperties: false },
)
const ContextSchema = Type.Object(
  { id: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)
const SinkStreamSchema = Type.Object(
  { table: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
)

type Stream = Static<typeof StreamSchema>
type Context = Static<typeof ContextSchema>
type SinkStream = Static<typeof SinkStreamSchema>

const record = (id: number): RecordData => ({ kind: 'record', values: { id } })

/** An in-memory connection whose behaviour each test adjusts. */
class FakeConnection implements Connection<Stream, Context, SinkStream> {
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

function makeProvider(
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

const goodInput = {
  credentials: { user: 'app', password: PASSWORD },
  params: { host: 'db.internal', apiToken: API_TOKEN },
}
const urlInput = {
  credentials: { connectionString: CONNECTION_URL },
  params: { host: 'db.internal' },
}

async function connected(
  input: { credentials: unknown; params: unknown } = goodInput,
  logger?: Logger,
) {
  const made = makeProvider()
  const connection = await made.provider.connect(input, logger ? { logger } : {})
  return { ...made, connection, inner: made.connections[0]! }
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
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
function everyText(error: unknown): string {
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

function expectNoSecret(error: unknown) {
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

async function readAll<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

describe('defineProvider', () => {
  const base = {
    version: '1.0.0',
    specificationVersion: SPECIFICATION_VERSION as typeof SPECIFICATION_VERSION,
    credentials: Type.Object({}),
    params: Type.Object({}),
    connect: async () => ({ check: async () => {}, close: async () => {} }),
  }

  it('rejects ids that are not lower-case letters, digits and dashes', () => {
    for (const id of ['', 'Acme', 'acme_db', '1acme', 'acme db', 'a'.repeat(65), '-acme']) {
      expect(() => defineProvider({ ...base, id }), id).toThrow(
        expect.objectContaining({ kind: 'config' }),
      )
    }
    for (const id of ['acme', 'acme-db', 'a1', 's3'])
      expect(defineProvider({ ...base, id }).id).toBe(id)
  })

  it('rejects another specification version', () => {
    expect(() =>
      defineProvider({ ...base, id: 'acme', specificationVersion: 'v2' as any }),
    ).toThrow(
      expect.objectContaining({
        kind: 'config',
        providerId: 'acme',
        message: expect.stringContaining('v2'),
      }),
    )
  })

  it('rejects unknown or missing data kinds', () => {
    const source = { stream: Type.Object({}), context: Type.Object({}), ordering: 'key' }
    expect(() => defineProvider({ ...base, id: 'acme', source: { ...source, data: [] } })).toThrow(
      expect.objectContaining({ kind: 'config' }),
    )
    expect(() =>
      defineProvider({ ...base, id: 'acme', source: { ...source, data: 'rows' as any } }),
    ).toThrow(expect.objectContaining({ kind: 'config' }))
    expect(() =>
      defineProvider({
        ...base,
        id: 'acme',
        sink: { data: ['record', 'table' as any], stream: Type.Object({}), idempotentBy: 'key' },
      }),
    ).toThrow(expect.objectContaining({ kind: 'config' }))
  })

  it('derives capabilities from the definition', () => {
    const { provider } = makeProvider()
    expect(provider.id).toBe('acme-db')
    expect(provider.version).toBe(VERSION)
    expect(provider.specificationVersion).toBe('v1')
    expect(provider.capabilities).toEqual({
      read: true,
      write: true,
      discover: true,
      incremental: true,
      delete: true,
      describeStream: false,
      prepare: false,
      offsets: false,
      partition: false,
      sourceData: ['record'],
      sinkData: ['record'],
    })
    expect(Object.isFrozen(provider.capabilities)).toBe(true)
    const bare = defineProvider({ ...base, id: 'bare' })
    expect(bare.capabilities).toEqual({
      read: false,
      write: false,
      discover: false,
      incremental: false,
      delete: false,
      describeStream: false,
      prepare: false,
      offsets: false,
      partition: false,
      sourceData: [],
      sinkData: [],
    })
    const multi = defineProvider({
      ...base,
      id: 'multi',
      source: {
        data: ['blob', 'document'],
        stream: Type.Object({ kind: Type.String() }),
        context: Type.Object({}),
        ordering: 'key',
        dataKindOf: (s: { kind: string }) => (s.kind === 'docs' ? 'document' : 'blob'),
      },
    })
    expect(multi.capabilities.sourceData).toEqual(['blob', 'document'])
    expect(multi.sourceDataKind({ kind: 'docs' })).toBe('document')
    expect(multi.sourceDataKind({ kind: 'files' })).toBe('blob')
  })

  it('describe() gives JSON-serializable schemas with secret fields marked', () => {
    const { provider } = makeProvider()
    const description = JSON.parse(JSON.stringify(provider.describe()))
    expect(description).toMatchObject({
      id: 'acme-db',
      version: VERSION,
      specificationVersion: 'v1',
      displayName: 'Acme DB',
      description: 'A test database',
      ordering: 'primary key',
      idempotentBy: 'primary key',
      capabilities: { read: true, write: true },
    })
    const [passwordShape, urlShape] = description.schemas.credentials.anyOf
    expect(passwordShape.properties.password).toMatchObject({
      type: 'string',
      secret: true,
      writeOnly: true,
    })
    expect(passwordShape.properties.user.secret).toBeUndefined()
    expect(urlShape.properties.connectionString).toMatchObject({ secret: true, writeOnly: true })
    expect(description.schemas.params.properties.apiToken).toMatchObject({ secret: true })
    expect(description.schemas.params.properties.port.default).toBe(5432)
    expect(description.schemas.sourceStream.properties.table.type).toBe('string')
    expect(description.schemas.context.properties.id.type).toBe('integer')
    expect(description.schemas.sinkStream.properties.table.type).toBe('string')
  })

  it('describe() leaves out what a provider does not have', () => {
    const description = defineProvider({ ...base, id: 'bare' }).describe()
    expect(description.schemas.sourceStream).toBeUndefined()
    expect(description.schemas.sinkStream).toBeUndefined()
    expect(description.ordering).toBeUndefined()
    expect(description.displayName).toBeUndefined()
  })

  it('validateStream, validateSinkStream and validateContext name their paths', () => {
    const { provider } = makeProvider()
    expect(provider.validateStream({ table: 'users' })).toEqual({ table: 'users', batchSize: 100 })
    expect(() => provider.validateStream({ table: '' })).toThrow(
      expect.objectContaining({
        kind: 'config',
        issues: [expect.objectContaining({ path: '/stream/table', rule: 'minLength' })],
      }),
    )
    expect(() => provider.validateSinkStream({})).toThrow(
      expect.objectContaining({
        issues: [expect.objectContaining({ path: '/stream/table', rule: 'required' })],
      }),
    )
    expect(() => provider.validateContext({ id: -1 })).toThrow(
      expect.objectContaining({
        issues: [expect.objectContaining({ path: '/after/id', rule: 'minimum' })],
      }),
    )
    const bare = defineProvider({ ...base, id: 'bare' })
    expect(() => bare.validateStream({})).toThrow(
      expect.objectContaining({ kind: 'config', message: expect.stringContaining('no source') }),
    )
    expect(() => bare.validateSinkStream({})).toThrow(
      expect.objectContaining({ kind: 'config', message: expect.stringContaining('no sink') }),
    )
  })
})

describe('connect', () => {
  it('validates and applies defaults before calling the definition', async () => {
    const { inner } = await connected()
    expect(inner.input).toEqual({
      credentials: { user: 'app', password: PASSWORD },
      params: { host: 'db.internal', port: 5432, apiToken: API_TOKEN },
    })
    expect(inner.context.signal).toBeInstanceOf(AbortSignal)
  })

  it('rejects bad credentials and params with config issues under /credentials and /params, without the secret', async () => {
    const { provider, connections } = makeProvider()
    const error = await rejection(
      provider.connect({
        credentials: { user: 'app', password: PASSWORD, extra: API_TOKEN },
        params: { port: 0, apiToken: 12 },
      }),
    )
    expect(error.kind).toBe('config')
    expect(error.providerId).toBe('acme-db')
    expect(error.operation).toBe('connect')
    const paths = error.issues!.map((i) => `${i.path} ${i.rule}`)
    expect(paths).toEqual(
      expect.arrayContaining([
        '/credentials anyOf',
        '/credentials/extra additionalProperties',
        '/params/host required',
        '/params/port minimum',
        '/params/apiToken type',
      ]),
    )
    expect(error.message).toContain('credentials and params')
    for (const issue of error.issues!) expect(error.message).toContain(issue.path)
    expect(connections).toHaveLength(0)
    expectNoSecret(error)
  })

  it('rejects a secret that fails its rule without echoing it', async () => {
    const { provider } = makeProvider()
    const error = await rejection(
      provider.connect({ credentials: { user: 'app', password: 'short' }, params: { host: 'h' } }),
    )
    expect(
      error.issues!.some((i) => i.path === '/credentials/password' && i.rule === 'minLength'),
    ).toBe(true)
    expect(everyText(error)).not.toContain('short"')
  })

  it('treats missing input as empty objects', async () => {
    const { provider } = makeProvider()
    const error = await rejection(provider.connect({} as any))
    expect(error.kind).toBe('config')
    expect(error.issues!.some((i) => i.path === '/params/host')).toBe(true)
  })

  it('classifies and redacts a failure of the definition’s connect', async () => {
    const driver = Object.assign(new Error(`password authentication failed for "${PASSWORD}"`), {
      code: '28P01',
      config: { password: PASSWORD },
    })
    const { provider } = makeProvider({ connectError: driver })
    const error = await rejection(provider.connect(goodInput))
    expect(error.kind).toBe('auth')
    expect(error.operation).toBe('connect')
    expect(error.providerId).toBe('acme-db')
    expect(error.code).toBe('28P01')
    expectNoSecret(error)
  })

  it('classifies a refused connection as transient and redacts the URL password', async () => {
    const driver = Object.assign(
      new Error(`connect ECONNREFUSED for ${URL_PASSWORD} (${encodeURIComponent(URL_PASSWORD)})`),
      {
        code: 'ECONNREFUSED',
      },
    )
    const { provider } = makeProvider({ connectError: driver })
    const error = await rejection(provider.connect(urlInput))
    expect(error.kind).toBe('transient')
    expect(error.message).toContain(REDACTED)
    expectNoSecret(error)
  })

  it('gives the definition a logger that redacts secrets', async () => {
    const logger = memoryLogger()
    const { inner } = await connected(urlInput, logger)
    inner.context.logger.info(`connecting with ${CONNECTION_URL}`)
    inner.context.logger.warn(
      { url: CONNECTION_URL, nested: { password: URL_PASSWORD } },
      `password ${URL_PASSWORD}`,
    )
    inner.context.logger.child?.({ dsn: CONNECTION_URL }).error('child line')
    expect(logger.lines.length).toBe(3)
    const text = JSON.stringify(logger.lines)
    expect(text).not.toContain(URL_PASSWORD)
    expect(text).not.toContain(encodeURIComponent(URL_PASSWORD))
    expect(text).toContain(REDACTED)
  })

  it('passes the caller’s signal to the definition', async () => {
    const { provider, connections } = makeProvider()
    const controller = new AbortController()
    await provider.connect(goodInput, { signal: controller.signal })
    expect(connections[0]!.context.signal).toBe(controller.signal)
  })

  it('redactor() covers credentials and params', () => {
    const { provider } = makeProvider()
    const redactor = provider.redactor(goodInput)
    expect(redactor.text(`${PASSWORD} ${API_TOKEN} db.internal`)).toBe(
      `${REDACTED} ${REDACTED} db.internal`,
    )
  })
})

describe('guarded connection', () => {
  it('check, discover, read, write and delete reach the connection', async () => {
    const { connection, inner } = await connected()
    expect(connection.providerId).toBe('acme-db')
    await connection.check()
    expect(await connection.discover()).toEqual([
      { name: 'users', type: 'table', data: 'record', stream: { table: 'users' } },
    ])
    const items = await readAll(
      connection.read({ table: 'users' }, { signal: new AbortController().signal }),
    )
    expect(items.map((i) => i.context)).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 3 },
      { id: 4 },
      { id: 5 },
    ])
    expect(inner.readCalls[0]).toEqual({
      stream: { table: 'users', batchSize: 100 },
      after: undefined,
    })
    const result = await connection.write({ table: 'users' }, [record(1)], {
      signal: new AbortController().signal,
    })
    expect(result).toEqual({ written: 1, failed: [] })
    expect(
      await connection.delete({ table: 'users' }, ['1', '2'], {
        signal: new AbortController().signal,
      }),
    ).toEqual({ written: 2, failed: [] })
  })

  it('resumes a read after a validated context', async () => {
    const { connection, inner } = await connected()
    const items = await readAll(
      connection.read(
        { table: 'users' },
        { after: { id: 3 }, signal: new AbortController().signal },
      ),
    )
    expect(items.map((i) => i.context)).toEqual([{ id: 4 }, { id: 5 }])
    expect(inner.readCalls[0]!.after).toEqual({ id: 3 })
  })

  it('validates stream settings and the resume context before reading', async () => {
    const { connection, inner } = await connected()
    const signal = new AbortController().signal
    const badStream = await rejection(
      readAll(connection.read({ table: '', extra: true } as any, { signal })),
    )
    expect(badStream.kind).toBe('config')
    expect(badStream.operation).toBe('read')
    expect(badStream.providerId).toBe('acme-db')
    expect(badStream.issues!.map((i) => `${i.path} ${i.rule}`)).toEqual(
      expect.arrayContaining(['/stream/table minLength', '/stream/extra additionalProperties']),
    )
    const badContext = await rejection(
      readAll(connection.read({ table: 'users' }, { after: { id: 'x' } as any, signal })),
    )
    expect(badContext.kind).toBe('config')
    expect(badContext.issues!.map((i) => `${i.path} ${i.rule}`)).toEqual(['/after/id type'])
    const badSink = await rejection(connection.write({ tbl: 'x' } as any, [record(1)], { signal }))
    expect(badSink.kind).toBe('config')
    expect(badSink.operation).toBe('write')
    expect(badSink.issues!.map((i) => i.path)).toEqual(
      expect.arrayContaining(['/stream/table', '/stream/tbl']),
    )
    expect(inner.readCalls).toHaveLength(0)
    expect(inner.writes).toHaveLength(0)
  })

  it('classifies a read error and tags it with stream, operation and the last yielded cursor, without secrets', async () => {
    const { connection, inner } = await connected(urlInput)
    inner.readError = {
      afterId: 2,
      error: Object.assign(
        new Error(`socket hang up talking to ${CONNECTION_URL} as ${URL_PASSWORD}`),
        {
          code: 'ECONNRESET',
          client: { connectionString: CONNECTION_URL },
        },
      ),
    }
    const seen: unknown[] = []
    const error = await rejection(
      (async () => {
        for await (const item of connection.read(
          { table: 'users' },
          { signal: new AbortController().signal },
        ))
          seen.push(item.context)
      })(),
    )
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(error.kind).toBe('transient')
    expect(error.providerId).toBe('acme-db')
    expect(error.operation).toBe('read')
    expect(error.stream).toBe('users')
    expect(error.cursor).toEqual({ id: 2 })
    expect(error.code).toBe('ECONNRESET')
    expect(error.message).toContain(REDACTED)
    expectNoSecret(error)
    expect((error.cause as Record<string, unknown>).client).toBeUndefined()
  })

  it('uses the resume context as the cursor when the read fails before its first item', async () => {
    const { connection, inner } = await connected()
    inner.rows = [1, 2, 3, 4, 5]
    inner.onRead = () => {
      throw Object.assign(new Error('duplicate'), { code: '23505' })
    }
    const error = await rejection(
      readAll(
        connection.read(
          { table: 'users' },
          { after: { id: 3 }, signal: new AbortController().signal },
        ),
      ),
    )
    expect(error.kind).toBe('data')
    expect(error.cursor).toEqual({ id: 3 })
  })

  it('redacts secrets from the errors of check, discover and close, keeping the classified kind', async () => {
    const { connection, inner } = await connected()
    inner.checkError = Object.assign(new Error(`auth failed: ${PASSWORD}`), { code: '28P01' })
    const checkError = await rejection(connection.check())
    expect(checkError.kind).toBe('auth')
    expect(checkError.operation).toBe('check')
    expectNoSecret(checkError)

    inner.checkError = new ProviderError({
      kind: 'rate_limited',
      message: `limited token ${API_TOKEN}`,
      retryAfterMs: 1000,
    })
    const limited = await rejection(connection.check())
    expect(limited.kind).toBe('rate_limited')
    expect(limited.retryAfterMs).toBe(1000)
    expect(limited.providerId).toBe('acme-db')
    expectNoSecret(limited)

    inner.checkError = `thrown string with ${PASSWORD}`
    const stringError = await rejection(connection.check())
    expect(stringError.kind).toBe('internal')
    expectNoSecret(stringError)

    inner.closeError = new Error(`close failed ${PASSWORD}`)
    const closeError = await rejection(connection.close())
    expect(closeError.operation).toBe('close')
    expectNoSecret(closeError)
  })

  it('write: items of the wrong data kind fail alone, the rest reach the connection with remapped indexes', async () => {
    const { connection, inner } = await connected()
    const doc: Data = { kind: 'document', id: 'd1', content: {} }
    const message: Data = { kind: 'message', id: 'm1', payload: new Uint8Array() }
    const batch: Data[] = [record(0), doc, record(2), message, record(4), record(5)]
    // The connection fails its own item 2, which is the batch's item 4.
    inner.writeResult = (accepted) => ({
      written: accepted.length - 1,
      failed: [
        { index: 2, error: Object.assign(new Error('duplicate key'), { code: '23505' }) as any },
      ],
    })
    const result = await connection.write({ table: 'users' }, batch, {
      signal: new AbortController().signal,
    })
    expect(inner.writes).toHaveLength(1)
    expect(inner.writes[0]!.batch).toEqual([record(0), record(2), record(4), record(5)])
    expect(result.written).toBe(3)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [3, 'data'],
      [4, 'data'],
    ])
    for (const failure of result.failed) {
      expect(ProviderError.isInstance(failure.error)).toBe(true)
      expect(failure.error.providerId).toBe('acme-db')
      expect(failure.error.operation).toBe('write')
      expect(failure.error.stream).toBe('users')
    }
    expect(result.failed[0]!.error.message).toContain('item 1')
    expect(result.failed[0]!.error.message).toContain('document')
    expect(result.failed[2]!.error.code).toBe('23505')
  })

  it('write: a batch with no item of the right kind never reaches the connection', async () => {
    const { connection, inner } = await connected()
    const result = await connection.write(
      { table: 'users' },
      [{ kind: 'document', id: 'd', content: {} }, null as any],
      {
        signal: new AbortController().signal,
      },
    )
    expect(inner.writes).toHaveLength(0)
    expect(result.written).toBe(0)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [0, 'data'],
      [1, 'data'],
    ])
    expect(
      await connection.write({ table: 'users' }, [], { signal: new AbortController().signal }),
    ).toEqual({ written: 0, failed: [] })
  })

  it('write: a whole-batch failure is classified and redacted', async () => {
    const { connection, inner } = await connected()
    inner.writeResult = () => {
      throw Object.assign(new Error(`auth expired for ${PASSWORD}`), { code: '28P01' })
    }
    const error = await rejection(
      connection.write({ table: 'users' }, [record(1)], { signal: new AbortController().signal }),
    )
    expect(error.kind).toBe('auth')
    expect(error.operation).toBe('write')
    expect(error.stream).toBe('users')
    expectNoSecret(error)
  })

  it('closes the connection once, even when close is called twice', async () => {
    const { connection, inner } = await connected()
    expect(connection.closed).toBe(false)
    const first = connection.close()
    const second = connection.close()
    await Promise.all([first, second])
    await connection.close()
    expect(inner.closeCalls).toBe(1)
    expect(connection.closed).toBe(true)
  })

  it('rejects a close that throws synchronously as a classified error', async () => {
    const { connection, inner } = await connected()
    inner.close = (() => {
      throw new Error(`sync close failure ${PASSWORD}`)
    }) as any
    const error = await rejection(connection.close())
    expect(error.operation).toBe('close')
    expectNoSecret(error)
  })

  it('fails every operation after close', async () => {
    const { connection, inner } = await connected()
    await connection.close()
    const signal = new AbortController().signal
    for (const promise of [
      connection.check(),
      connection.discover(),
      readAll(connection.read({ table: 'users' }, { signal })),
      connection.write({ table: 'users' }, [record(1)], { signal }),
      connection.delete({ table: 'users' }, ['1'], { signal }),
    ]) {
      const error = await rejection(promise)
      expect(error.message).toContain('closed')
      expect(error.providerId).toBe('acme-db')
    }
    expect(inner.readCalls).toHaveLength(0)
    expect(inner.writes).toHaveLength(0)
  })

  it('fails a read in progress once the connection is closed, and stops the inner read', async () => {
    const { connection, inner } = await connected()
    const iterator = connection
      .read({ table: 'users' }, { signal: new AbortController().signal })
      [Symbol.asyncIterator]()
    expect((await iterator.next()).value.context).toEqual({ id: 1 })
    await connection.close()
    const error = await rejection(iterator.next())
    expect(error.message).toContain('closed')
    expect(inner.readReturned).toBe(1)
  })

  it('ends a read with an AbortError when aborted between items, and stops the inner read', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read({ table: 'users' }, { signal: controller.signal })) {
        seen.push(item.context)
        if (seen.length === 2) controller.abort()
      }
    })().catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('ends a read when the signal aborts while the inner read is producing an item', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    inner.onRead = (id) => {
      if (id === 3) controller.abort()
    }
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read({ table: 'users' }, { signal: controller.signal }))
        seen.push(item.context)
    })().catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(ProviderError.isInstance(error)).toBe(false)
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('does not start a read whose signal is already aborted', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    controller.abort()
    const error = await readAll(
      connection.read({ table: 'users' }, { signal: controller.signal }),
    ).catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(inner.readCalls).toHaveLength(0)
  })

  it('keeps an abort an abort in check and write', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    controller.abort()
    inner.checkError = controller.signal.reason
    const checkError = await connection.check().catch((e) => e)
    expect(checkError.name).toBe('AbortError')
    expect(ProviderError.isInstance(checkError)).toBe(false)
    inner.writeResult = () => {
      throw controller.signal.reason
    }
    const writeError = await connection
      .write({ table: 'users' }, [record(1)], { signal: controller.signal })
      .catch((e) => e)
    expect(writeError.name).toBe('AbortError')
  })

  it.each([
    [
      'an item of another kind',
      { data: { kind: 'document', id: 'x', content: {} }, context: { id: 3 } },
      /acme-db yielded a document item from a stream of record items/,
    ],
    ['an item without data', { context: { id: 3 } }, /acme-db yielded an item without data/],
    [
      'an item without a context',
      { data: record(3) },
      /yielded a record item without a context: a read could not resume/,
    ],
  ])('fails a read whose source yields %s, as internal, and stops the inner read', async (_what, bad, message) => {
    const { connection, inner } = await connected()
    inner.itemFor = (id) => (id === 3 ? bad : undefined)
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read(
        { table: 'users' },
        { signal: new AbortController().signal },
      ))
        seen.push(item.context)
    })().catch((e) => e)
    expect(ProviderError.isInstance(error)).toBe(true)
    expect(error.kind).toBe('internal')
    expect(error.message).toMatch(message)
    expect(error.cursor).toEqual({ id: 2 })
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('fails the first item too when it is of the wrong kind (the slow path)', async () => {
    const { connection, inner } = await connected()
    inner.itemFor = () => ({
      data: { kind: 'blob', key: 'k', body: new Uint8Array() },
      context: { id: 1 },
    })
    const error = await (async () => {
      for await (const _ of connection.read(
        { table: 'users' },
        { signal: new AbortController().signal },
      )) {
      }
    })().catch((e) => e)
    expect(error.kind).toBe('internal')
    expect(error.message).toMatch(/yielded a blob item from a stream of record items/)
    expect(inner.readReturned).toBe(1)
  })

  it('ends a check that never answers when its signal aborts', async () => {
    const { connection, inner } = await connected()
    inner.checkHangs = true
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 20)
    const error = await connection.check({ signal: controller.signal }).catch((e) => e)
    expect(error.name).toBe('AbortError')
  })

  it('stops the inner read when the consumer breaks early', async () => {
    const { connection, inner } = await connected()
    for await (const item of connection.read(
      { table: 'users' },
      { signal: new AbortController().signal },
    )) {
      expect(item.context).toEqual({ id: 1 })
      break
    }
    expect(inner.readReturned).toBe(1)
  })

  it('reports missing optional operations as config errors', async () => {
    const provider = defineProvider({
      id: 'minimal',
      version: '1.0.0',
      specificationVersion: SPECIFICATION_VERSION,
      credentials: Type.Object({}),
      params: Type.Object({}),
      source: {
        data: 'record',
        stream: Type.Object({}),
        context: Type.Object({}),
        ordering: 'none',
      },
      sink: { data: 'record', stream: Type.Object({}), idempotentBy: 'none' },
      connect: async () => ({ check: async () => {}, close: async () => {} }),
    })
    const connection = await provider.connect({ credentials: {}, params: {} })
    const signal = new AbortController().signal
    for (const promise of [
      connection.discover(),
      readAll(connection.read({}, { signal })),
      connection.write({}, [record(1)], { signal }),
      connection.delete({}, ['1'], { signal }),
    ]) {
      const error = await rejection(promise)
      expect(error.kind).toBe('config')
      expect(error.providerId).toBe('minimal')
    }
  })
})

describe('classification hooks', () => {
  it('a classifier that throws does not hide the original failure', async () => {
    const classifyError = vi.fn(() => undefined)
    const { provider } = makeProvider({ classifyError, connectError: new Error('plain failure') })
    const error = await rejection(provider.connect(goodInput))
    expect(classifyError).toHaveBeenCalledTimes(1)
    expect(error.kind).toBe('internal')
    expect(error.message).toBe('plain failure')
  })
})

describe('incremental per stream', () => {
  it('follows incrementalFor when the provider declares it, and `incremental` otherwise', async () => {
    const {
      defineProvider: define,
      Type: T,
      SPECIFICATION_VERSION: spec,
    } = await import('./index.js')
    const base = {
      version: '0.0.0',
      specificationVersion: spec,
      credentials: T.Object({}),
      params: T.Object({}),
      async connect() {
        return { check: async () => {}, close: async () => {} }
      },
    } as const
    const stream = T.Object({ kind: T.Union([T.Literal('log'), T.Literal('keys')]) })
    const byStream = define({
      ...base,
      id: 'by-stream',
      source: {
        data: 'message' as const,
        stream,
        context: T.Object({}),
        incremental: true,
        ordering: 'id',
        incrementalFor: (s) => s.kind === 'log',
      },
    })
    expect(byStream.isIncremental({ kind: 'log' })).toBe(true)
    expect(byStream.isIncremental({ kind: 'keys' })).toBe(false)
    const plain = define({
      ...base,
      id: 'plain',
      source: {
        data: 'message' as const,
        stream,
        context: T.Object({}),
        incremental: true,
        ordering: 'id',
      },
    })
    expect(plain.isIncremental({ kind: 'keys' })).toBe(true)
  })
})
