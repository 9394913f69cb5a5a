import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { redisProvider } from './index.js'

function configError(fn: () => unknown): ProviderError {
  try {
    fn()
  } catch (error) {
    expect(ProviderError.isInstance(error)).toBe(true)
    expect((error as ProviderError).kind).toBe('config')
    return error as ProviderError
  }
  throw new Error('expected a config error')
}

describe('redis schemas', () => {
  it('accepts empty credentials and fills param defaults', () => {
    const { credentials, params } = redisProvider.validateInput({ credentials: {}, params: {} })
    expect(credentials).toEqual({})
    expect(params).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 })
  })

  it('accepts cluster nodes and TLS options', () => {
    const { params } = redisProvider.validateInput({
      credentials: { username: 'u', password: 'p' },
      params: { cluster: [{ host: 'a', port: 7000 }], tls: { rejectUnauthorized: false } },
    })
    expect(params.cluster).toEqual([{ host: 'a', port: 7000 }])
  })

  it('names the failing field', () => {
    const error = configError(() =>
      redisProvider.validateInput({
        credentials: {},
        params: { cluster: [{ host: 'a', port: 0 }] },
      }),
    )
    expect(error.issues?.map((i) => i.path)).toContain('/params/cluster/0/port')
    expect(
      configError(() => redisProvider.validateStream({ kind: 'stream', key: '' })).message,
    ).toContain('/stream/key')
  })

  it('marks the password secret and never echoes it', () => {
    expect(redisProvider.describe().schemas.credentials.properties.password.secret).toBe(true)
    const error = configError(() =>
      redisProvider.validateInput({ credentials: { password: 'hunter2', extra: 'x' }, params: {} }),
    )
    expect(error.message).not.toContain('hunter2')
  })

  it('declares both data kinds and picks one per stream', () => {
    expect(redisProvider.capabilities.sourceData).toEqual(['message', 'document'])
    expect(redisProvider.sourceDataKind({ kind: 'stream', key: 'k' })).toBe('message')
    expect(redisProvider.sinkDataKind({ kind: 'document', prefix: 'p:' })).toBe('document')
  })

  it('validates resume contexts', () => {
    expect(redisProvider.validateContext({ id: '1-0' })).toEqual({ id: '1-0' })
    expect(redisProvider.validateContext({ cursor: '0', next: '12', key: 'p:a' })).toEqual({
      cursor: '0',
      next: '12',
      key: 'p:a',
    })
    configError(() => redisProvider.validateContext({ id: 'abc' }))
  })
})
