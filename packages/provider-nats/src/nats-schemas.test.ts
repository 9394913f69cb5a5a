import { headers } from '@nats-io/nats-core'
import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { buildConnectionOptions } from './nats-connection.js'
import { natsProvider } from './nats-provider.js'
import { toMessageData } from './nats-source.js'

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

describe('nats schemas', () => {
  it('accepts each credential form, including none', () => {
    for (const credentials of [
      {},
      { token: 't0ken' },
      { user: 'u', password: 'p' },
      { user: 'u', password: '' },
      { creds: '---' },
    ]) {
      expect(
        natsProvider.validateInput({ credentials, params: { servers: 'localhost:4222' } })
          .credentials,
      ).toEqual(credentials)
    }
  })

  it('refuses mixed or unknown credential fields', () => {
    configError(() =>
      natsProvider.validateInput({
        credentials: { token: 't', user: 'u' },
        params: { servers: 'h' },
      }),
    )
    configError(() =>
      natsProvider.validateInput({ credentials: { password: 'p' }, params: { servers: 'h' } }),
    )
  })

  it('takes one server or a list, and names bad fields by path', () => {
    expect(
      natsProvider.validateInput({ credentials: {}, params: { servers: ['a:4222', 'b:4222'] } })
        .params.servers,
    ).toEqual(['a:4222', 'b:4222'])
    const empty = configError(() =>
      natsProvider.validateInput({ credentials: {}, params: { servers: [] } }),
    )
    expect(empty.issues?.some((i) => i.path.startsWith('/params/servers'))).toBe(true)
    const missing = configError(() => natsProvider.validateInput({ credentials: {}, params: {} }))
    expect(missing.issues?.map((i) => i.path)).toContain('/params/servers')
    const badStream = configError(() =>
      natsProvider.validateInput({ credentials: {}, params: { servers: 'h', stream: 'a.b' } }),
    )
    expect(badStream.issues?.map((i) => i.path)).toContain('/params/stream')
  })

  it('validates sink settings and resume contexts', () => {
    expect(natsProvider.validateSinkStream({ subject: 'a.b', maxInFlight: 64 })).toEqual({
      subject: 'a.b',
      maxInFlight: 64,
    })
    expect(
      configError(() => natsProvider.validateSinkStream({ subject: 'a.*' })).issues?.[0]?.path,
    ).toBe('/stream/subject')
    expect(
      configError(() => natsProvider.validateSinkStream({ maxInFlight: 0 })).issues?.[0]?.path,
    ).toBe('/stream/maxInFlight')
    expect(natsProvider.validateContext({ seq: 42 })).toEqual({ seq: 42 })
    expect(configError(() => natsProvider.validateContext({ seq: -1 })).issues?.[0]?.path).toBe(
      '/after/seq',
    )
  })

  it('marks every credential as secret', () => {
    const redactor = natsProvider.redactor({
      credentials: { user: 'someone', password: 'hunter22' },
      params: { servers: 'h' },
    })
    expect(redactor.text('user someone with hunter22')).not.toMatch(/someone|hunter22/)
  })
})

describe('buildConnectionOptions', () => {
  it('maps TLS modes and credentials to client options', () => {
    const plain = buildConnectionOptions({ servers: 'h:4222' }, {})
    expect(plain).toMatchObject({ servers: 'h:4222', name: 'nvisy', noAsyncTraces: true })
    expect(plain.tls).toBeUndefined()
    expect(buildConnectionOptions({ servers: 'h', tls: 'on' }, {}).tls).toEqual({})
    // The shared TLS shape of every provider (provider-core TlsSchema) is accepted too,
    // and a mode outside it is refused, naming the field.
    for (const tls of [{ mode: 'verify', ca: 'PEM' }, { mode: 'require' }, { mode: 'off' }])
      expect(
        natsProvider.validateInput({ credentials: {}, params: { servers: 'h', tls } }).params.tls,
      ).toEqual(tls)
    const refused = configError(() =>
      natsProvider.validateInput({
        credentials: {},
        params: { servers: 'h', tls: { mode: 'sometimes' } },
      }),
    )
    expect(refused.issues?.some((issue) => issue.path.startsWith('/params/tls'))).toBe(true)
    expect(
      buildConnectionOptions(
        { servers: 'h', tls: { mode: 'verify', ca: 'PEM', servername: 'n' } },
        {},
      ).tls,
    ).toEqual({ rejectUnauthorized: true, ca: 'PEM', servername: 'n' })
    expect(buildConnectionOptions({ servers: 'h', tls: { mode: 'require' } }, {}).tls).toEqual({
      rejectUnauthorized: false,
    })
    expect(buildConnectionOptions({ servers: 'h', tls: { mode: 'off' } }, {}).tls).toBeUndefined()
    expect(buildConnectionOptions({ servers: 'h', tls: { ca: 'PEM' } }, {}).tls).toEqual({
      ca: 'PEM',
    })
    expect(buildConnectionOptions({ servers: 'h', name: 'etl' }, { token: 'abc' })).toMatchObject({
      name: 'etl',
      token: 'abc',
    })
    expect(buildConnectionOptions({ servers: 'h' }, { user: 'u', password: 'p' })).toMatchObject({
      user: 'u',
      pass: 'p',
    })
    expect(typeof buildConnectionOptions({ servers: 'h' }, { creds: 'x' }).authenticator).toBe(
      'function',
    )
  })
})

describe('toMessageData', () => {
  it('uses Nats-Msg-Id as the id, drops Nats-* headers and keeps the rest', () => {
    const h = headers()
    h.set('Nats-Msg-Id', 'order-7')
    h.set('Nats-Expected-Stream', 'S')
    h.set('X-One', 'a')
    h.append('X-Many', '1')
    h.append('X-Many', '2')
    const data = toMessageData('S', 9, 'a.b', new Uint8Array([1, 2]), h, 1_700_000_000_123_456_789n)
    expect(data).toEqual({
      kind: 'message',
      id: 'order-7',
      subject: 'a.b',
      payload: new Uint8Array([1, 2]),
      headers: { 'X-One': 'a', 'X-Many': '1, 2' },
      timestamp: new Date(1_700_000_000_123),
    })
  })

  it('falls back to <stream>:<seq> without a message id', () => {
    expect(toMessageData('ORDERS', 12, 's', new Uint8Array(0), undefined, undefined)).toEqual({
      kind: 'message',
      id: 'ORDERS:12',
      subject: 's',
      payload: new Uint8Array(0),
    })
  })
})
