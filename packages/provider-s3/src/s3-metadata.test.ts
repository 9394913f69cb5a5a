import { describe, expect, it } from 'vitest'
import { classifyS3Error } from './s3-errors.js'
import { decodeMetadataValue, encodeMetadataValue, metadataKeyProblem } from './s3-metadata.js'

describe('S3 metadata encoding', () => {
  it('keeps ASCII values as they are and round-trips non-ASCII through RFC 2047 words', () => {
    expect(encodeMetadataValue('plain value')).toBe('plain value')
    for (const value of ['café', '✓ done', '日本語', '=?UTF-8?B?looks-encoded?=']) {
      const encoded = encodeMetadataValue(value)
      expect(encoded).toMatch(/^[\x20-\x7e]*$/)
      expect(decodeMetadataValue(encoded)).toBe(value)
    }
  })

  it('refuses metadata names that are not header-safe', () => {
    expect(metadataKeyProblem('content-origin')).toBeUndefined()
    expect(metadataKeyProblem('bad name')).toContain('bad name')
    expect(metadataKeyProblem('ünï')).toBeDefined()
  })
})

describe('classifyS3Error', () => {
  const sdkError = (name: string, status: number, headers: Record<string, string> = {}) =>
    Object.assign(new Error(`${name} message`), {
      name,
      $metadata: { httpStatusCode: status },
      $response: { headers },
    })

  it('maps the service codes to error kinds', () => {
    expect(classifyS3Error(sdkError('NoSuchBucket', 404))?.kind).toBe('not_found')
    expect(classifyS3Error(sdkError('SignatureDoesNotMatch', 403))?.kind).toBe('auth')
    expect(classifyS3Error(sdkError('InvalidAccessKeyId', 403))?.kind).toBe('auth')
    expect(classifyS3Error(sdkError('Forbidden', 403))?.kind).toBe('auth')
    expect(classifyS3Error(sdkError('PreconditionFailed', 412))?.kind).toBe('data')
    expect(classifyS3Error(sdkError('InternalError', 500))?.kind).toBe('transient')
    expect(classifyS3Error(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))?.kind).toBe(
      'transient',
    )
  })

  it('turns throttling into rate_limited with the delay the service asked for', () => {
    const slowDown = classifyS3Error(sdkError('SlowDown', 503, { 'retry-after': '7' }))
    expect(slowDown?.kind).toBe('rate_limited')
    expect(slowDown?.retryAfterMs).toBe(7000)
    expect(classifyS3Error(sdkError('TooManyRequests', 429))?.retryAfterMs).toBe(1000)
  })
})
