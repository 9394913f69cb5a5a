import { Type } from '@sinclair/typebox'
import { describe, expect, it, vi } from 'vitest'
import {
  API_TOKEN,
  CONNECTION_URL,
  connected,
  everyText,
  expectNoSecret,
  goodInput,
  makeProvider,
  PASSWORD,
  rejection,
  URL_PASSWORD,
  urlInput,
} from './__fixtures__/acme-provider.js'
import { SPECIFICATION_VERSION } from './contract.js'
import { defineProvider } from './define-provider.js'
import { memoryLogger } from './logger.js'
import { REDACTED } from './redact.js'
import { VERSION } from './version.js'

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
