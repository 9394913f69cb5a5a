import { describe, expect, it } from 'vitest'
import {
  classifyPineconeError,
  PineconeHttpError,
  statusPreservingFetch,
} from './pinecone-errors.js'
import { compareIds, prepareRecord } from './pinecone-records.js'

describe('classifyPineconeError', () => {
  it('maps HTTP statuses kept by the provider fetch', () => {
    const kinds = [401, 403, 404, 429, 500, 503, 400, 413].map(
      (status) =>
        classifyPineconeError(new Error('wrapped', { cause: new PineconeHttpError(status, 'x') }))
          ?.kind,
    )
    expect(kinds).toEqual([
      'auth',
      'auth',
      'not_found',
      'rate_limited',
      'transient',
      'transient',
      'data',
      'data',
    ])
    expect(classifyPineconeError(new PineconeHttpError(429, 'slow down', 2500))?.retryAfterMs).toBe(
      2500,
    )
    expect(classifyPineconeError(new PineconeHttpError(429, 'slow down'))?.retryAfterMs).toBe(1000)
  })

  it('maps the SDK error classes of an injected client', () => {
    const named = (name: string, message = 'm') => Object.assign(new Error(message), { name })
    expect(classifyPineconeError(named('PineconeAuthorizationError'))?.kind).toBe('auth')
    expect(
      classifyPineconeError(
        named('PineconeBadRequestError', '{"error":{"code":"PERMISSION_DENIED"}}'),
      )?.kind,
    ).toBe('auth')
    expect(
      classifyPineconeError(named('PineconeBadRequestError', 'Vector dimension 3 does not match'))
        ?.kind,
    ).toBe('data')
    expect(classifyPineconeError(named('PineconeNotFoundError'))?.kind).toBe('not_found')
    expect(
      classifyPineconeError(named('PineconeUnmappedHttpError', 'Status: 429. Body: x'))?.kind,
    ).toBe('rate_limited')
    expect(classifyPineconeError(named('PineconeMaxRetriesExceededError'))?.kind).toBe('transient')
    expect(classifyPineconeError(named('PineconeConnectionError'))?.kind).toBe('transient')
    expect(classifyPineconeError(new Error('not pinecone'))).toBeUndefined()
  })

  it('keeps status, service message and Retry-After through the fetch, without the query string', async () => {
    const fake = async () =>
      new Response(JSON.stringify({ code: 8, message: 'Too many requests', details: [] }), {
        status: 429,
        headers: { 'retry-after': '3' },
      })
    const error = await statusPreservingFetch(fake as never)(
      'https://h.example/vectors/fetch?ids=secret-id',
      {
        method: 'GET',
      },
    ).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PineconeHttpError)
    expect((error as PineconeHttpError).status).toBe(429)
    expect((error as PineconeHttpError).retryAfterMs).toBe(3000)
    expect((error as Error).message).toBe(
      'Pinecone answered 429 for GET https://h.example/vectors/fetch: Too many requests',
    )
  })
})

describe('prepareRecord', () => {
  it('estimates an upper bound of the JSON size', () => {
    const values = Array.from({ length: 768 }, (_, i) => -Math.random() * 1e-300 * (i + 1))
    const { record, bytes } = prepareRecord(
      {
        kind: 'embedding',
        id: 'x',
        values,
        metadata: { text: 'é'.repeat(100) },
        sparse: { indices: [4294967295], values: [-1e-300] },
      },
      768,
    )
    expect(bytes).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(record)))
  })

  it('converts Float32Array values to numbers', () => {
    const { record } = prepareRecord(
      { kind: 'embedding', id: 'f', values: new Float32Array([0.5, 1]) },
      2,
    )
    expect(record.values).toEqual([0.5, 1])
  })
})

describe('compareIds', () => {
  it('orders as UTF-8 bytes', () => {
    const ids = ['b', 'a', '\uFF21', '\u{1F600}', 'é', 'ab', '']
    expect([...ids].sort(compareIds)).toEqual(
      [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    )
  })
})
