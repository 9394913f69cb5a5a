import { ProviderError } from '@nvisy/provider-core'
import { MongoClient, MongoServerError } from 'mongodb'
import { describe, expect, it } from 'vitest'
import { clientSettings } from './mongodb-client.js'
import { afterValue, idFromString, idToString, resumeFilter } from './mongodb-documents.js'
import { classifyMongoError } from './mongodb-errors.js'
import { mongoProvider } from './mongodb-provider.js'

const serverError = (code: number, codeName: string, labels: string[] = []) =>
  new MongoServerError({
    ok: 0,
    code,
    codeName,
    errmsg: `failed: ${codeName}`,
    errorLabels: labels,
  })

describe('classifyMongoError', () => {
  it.each([
    [18, 'AuthenticationFailed', 'auth'],
    [13, 'Unauthorized', 'auth'],
    [11000, 'DuplicateKey', 'data'],
    [121, 'DocumentValidationFailure', 'data'],
    [10107, 'NotWritablePrimary', 'transient'],
    [13435, 'NotPrimaryNoSecondaryOk', 'transient'],
    [189, 'PrimarySteppedDown', 'transient'],
    [91, 'ShutdownInProgress', 'transient'],
    [16500, 'RequestRateTooLarge', 'rate_limited'],
    [26, 'NamespaceNotFound', 'not_found'],
    [9, 'FailedToParse', 'config'],
  ])('code %i (%s) is %s', (code, codeName, kind) => {
    const error = classifyMongoError(serverError(code, codeName))
    expect(error?.kind).toBe(kind)
    expect(error?.code).toBe(String(code))
  })

  it('treats an error labelled RetryableWriteError as transient', () => {
    expect(classifyMongoError(serverError(1234, 'Whatever', ['RetryableWriteError']))?.kind).toBe(
      'transient',
    )
  })

  it('leaves errors that are not from the driver alone', () => {
    expect(classifyMongoError(new Error('boom'))).toBeUndefined()
    expect(classifyMongoError('text')).toBeUndefined()
  })

  it('classifies a server selection timeout as transient', async () => {
    const client = new MongoClient('mongodb://127.0.0.1:1/?directConnection=true', {
      serverSelectionTimeoutMS: 200,
    })
    const raw = await client.connect().catch((e: unknown) => e)
    await client.close()
    expect((raw as Error).name).toBe('MongoServerSelectionError')
    expect(classifyMongoError(raw)?.kind).toBe('transient')
  })

  it('connect through the provider fails as transient when nothing listens', async () => {
    const error = await mongoProvider
      .connect({
        credentials: { username: 'u', password: 'secret-value-123' },
        params: {
          url: 'mongodb://127.0.0.1:1/?directConnection=true',
          database: 'x',
          serverSelectionTimeoutMS: 200,
        },
      })
      .catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('transient')
    expect(String((error as Error).message)).not.toContain('secret-value-123')
  })
})

describe('connection settings', () => {
  it('refuses a params.url that carries credentials, without repeating it', () => {
    const error = (() => {
      try {
        clientSettings(
          {},
          { url: 'mongodb://u:hunter2@h/', database: 'd', serverSelectionTimeoutMS: 1000 },
        )
      } catch (e) {
        return e
      }
    })()
    expect(ProviderError.isInstance(error) && error.kind).toBe('config')
    expect(String((error as Error).message)).not.toContain('hunter2')
  })

  it('needs a connection string, url or hosts, and user with password', () => {
    expect(() => clientSettings({}, { database: 'd', serverSelectionTimeoutMS: 1000 })).toThrow(
      /connectionString/,
    )
    expect(() =>
      clientSettings(
        { username: 'u' },
        { hosts: ['h:1'], database: 'd', serverSelectionTimeoutMS: 1000 },
      ),
    ).toThrow(/go together/)
    const { url, options } = clientSettings(
      { username: 'u', password: 'p' },
      {
        hosts: ['a:1', 'b:2'],
        database: 'd',
        readPreference: 'secondaryPreferred',
        authSource: 'admin',
        tls: true,
        serverSelectionTimeoutMS: 3000,
      },
    )
    expect(url).toBe('mongodb://a:1,b:2/')
    expect(options).toMatchObject({
      auth: { username: 'u', password: 'p' },
      readPreference: 'secondaryPreferred',
      authSource: 'admin',
      tls: true,
      serverSelectionTimeoutMS: 3000,
    })
  })

  it('rejects bad params with the field path', () => {
    expect(() =>
      mongoProvider.validateInput({
        credentials: {},
        params: { database: 'd', readPreference: 'fastest' },
      }),
    ).toThrow(/\/params\/readPreference/)
  })
})

describe('ids and resume filters', () => {
  it('maps _id to data.id and back', () => {
    expect(idToString('plain')).toBe('plain')
    expect(idToString(7)).toBe('{"$numberInt":"7"}')
    expect(idFromString('{"$numberInt":"7"}', 'auto')).toMatchObject({ value: 7 })
    expect(idFromString('0123456789abcdef01234567', 'auto')).toMatchObject({
      _bsontype: 'ObjectId',
    })
    expect(idFromString('0123456789abcdef01234567', 'string')).toBe('0123456789abcdef01234567')
    expect(idFromString('{not json', 'auto')).toBe('{not json')
  })

  it('adds the types that sort later to $gt, so mixed _id types resume correctly', () => {
    expect(afterValue('_id', 'a')).toEqual({
      $or: [
        { _id: { $gt: 'a' } },
        {
          _id: {
            $type: [
              'object',
              'array',
              'binData',
              'objectId',
              'bool',
              'date',
              'timestamp',
              'regex',
              'maxKey',
            ],
          },
        },
      ],
    })
    expect(resumeFilter('x', 'at', null)).toEqual({
      $or: [
        {
          at: {
            $type: [
              'number',
              'string',
              'object',
              'array',
              'binData',
              'objectId',
              'bool',
              'date',
              'timestamp',
              'regex',
              'maxKey',
            ],
          },
        },
        { $and: [{ at: null }, afterValue('_id', 'x')] },
      ],
    })
  })
})
