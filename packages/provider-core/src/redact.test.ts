import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import { ProviderError } from './errors.js'
import { collectSecrets, REDACTED, Redactor, redactObject } from './redact.js'
import { Secret } from './schema.js'

const Credentials = Type.Object({
  user: Type.String(),
  password: Secret(Type.String()),
  nested: Type.Optional(Type.Object({ apiKey: Secret(Type.String()), region: Type.String() })),
  tokens: Type.Optional(Type.Array(Secret(Type.String()))),
  headers: Type.Optional(Type.Record(Type.String(), Secret(Type.String()))),
  optionalSecret: Type.Optional(Secret(Type.String())),
})

describe('collectSecrets', () => {
  it('finds secrets through nested objects, arrays, records and optionals', () => {
    const secrets = collectSecrets(Credentials, {
      user: 'alice-the-user',
      password: 'pw-123456',
      nested: { apiKey: 'key-abcdef', region: 'eu-west-1' },
      tokens: ['token-one', 'token-two'],
      headers: { authorization: 'Bearer abc.def', 'x-api-key': 'header-key' },
      optionalSecret: 'optional-secret',
    })
    expect(secrets).toEqual(
      expect.arrayContaining([
        'pw-123456',
        'key-abcdef',
        'token-one',
        'token-two',
        'Bearer abc.def',
        'header-key',
        'optional-secret',
      ]),
    )
    expect(secrets).not.toContain('alice-the-user')
    expect(secrets).not.toContain('eu-west-1')
    // Longest first, so a secret containing another is replaced whole.
    for (let i = 1; i < secrets.length; i++)
      expect(secrets[i - 1]!.length).toBeGreaterThanOrEqual(secrets[i]!.length)
  })

  it('finds secrets in every branch of a union of credential shapes', () => {
    const Auth = Type.Object({
      auth: Type.Union([
        Type.Object({
          type: Type.Literal('password'),
          user: Type.String(),
          password: Secret(Type.String()),
        }),
        Type.Object({ type: Type.Literal('token'), token: Secret(Type.String()) }),
        Type.Object({
          type: Type.Literal('keys'),
          accessKeyId: Type.String(),
          secretAccessKey: Secret(Type.String()),
        }),
      ]),
    })
    expect(collectSecrets(Auth, { auth: { type: 'token', token: 'tok-secret-1' } })).toContain(
      'tok-secret-1',
    )
    expect(
      collectSecrets(Auth, { auth: { type: 'password', user: 'bob', password: 'pw-secret-2' } }),
    ).toEqual(['pw-secret-2'])
    const keys = collectSecrets(Auth, {
      auth: { type: 'keys', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI' },
    })
    expect(keys).toContain('wJalrXUtnFEMI')
    expect(keys).not.toContain('AKIAEXAMPLE')
  })

  it('finds secrets inside an intersection and a tuple', () => {
    const Both = Type.Intersect([
      Type.Object({ a: Type.String() }),
      Type.Object({ b: Secret(Type.String()) }),
    ])
    expect(collectSecrets(Both, { a: 'visible-a', b: 'hidden-b' })).toEqual(['hidden-b'])
    const Pair = Type.Object({ pair: Type.Tuple([Type.String(), Secret(Type.String())]) })
    expect(collectSecrets(Pair, { pair: ['visible', 'hidden-in-tuple'] })).toEqual([
      'hidden-in-tuple',
    ])
  })

  it('yields a connection URL password, raw and percent-decoded', () => {
    const Schema = Type.Object({ url: Secret(Type.String()) })
    const url = 'postgres://app:p%40ss%2Fw0rd!@db.internal:5432/app'
    const secrets = collectSecrets(Schema, { url })
    expect(secrets).toEqual(expect.arrayContaining([url, 'p%40ss%2Fw0rd!', 'p@ss/w0rd!']))
    // The user name and host are not secret on their own.
    expect(secrets).not.toContain('app')
    expect(secrets).not.toContain('db.internal')
  })

  it('yields the inner strings of a JSON secret', () => {
    const key = {
      type: 'service_account',
      project_id: 'my-project',
      private_key_id: 'abcdef0123456789',
      private_key: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n',
      client_email: 'svc@my-project.iam.gserviceaccount.com',
    }
    const Schema = Type.Object({ serviceAccountJson: Secret(Type.String()) })
    const text = JSON.stringify(key)
    const secrets = collectSecrets(Schema, { serviceAccountJson: text })
    expect(secrets).toEqual(expect.arrayContaining([text, key.private_key, key.private_key_id]))
    // An object-valued secret is searched the same way.
    const ObjectSecret = Type.Object({
      key: Secret(Type.Object({ private_key: Type.String(), id: Type.String() })),
    })
    expect(
      collectSecrets(ObjectSecret, { key: { private_key: 'PRIVATE-KEY-MATERIAL', id: 'short' } }),
    ).toEqual(['PRIVATE-KEY-MATERIAL'])
  })

  it('ignores absent values and secrets too short to search for', () => {
    expect(collectSecrets(Credentials, { user: 'u', password: 'ab' })).toEqual([])
    expect(collectSecrets(Credentials, undefined)).toEqual([])
    expect(collectSecrets(Credentials, { user: 'u', password: null })).toEqual([])
  })
})

describe('redactObject', () => {
  it('replaces secret fields in a deep copy', () => {
    const value = {
      user: 'alice',
      password: 'pw-123456',
      nested: { apiKey: 'key-abcdef', region: 'eu' },
      tokens: ['t1-secret', 't2-secret'],
      headers: { authorization: 'Bearer xyz' },
    }
    const redacted = redactObject(Credentials, value)
    expect(redacted).toEqual({
      user: 'alice',
      password: REDACTED,
      nested: { apiKey: REDACTED, region: 'eu' },
      tokens: [REDACTED, REDACTED],
      headers: { authorization: REDACTED },
    })
    expect(value.password).toBe('pw-123456')
    expect(value.nested.apiKey).toBe('key-abcdef')
  })

  it('redacts short secrets too, and returns the value itself when there is nothing secret', () => {
    expect(redactObject(Credentials, { user: 'u', password: 'x' })).toEqual({
      user: 'u',
      password: REDACTED,
    })
    const plain = { user: 'u' }
    expect(redactObject(Credentials, plain)).toBe(plain)
  })
})

describe('Redactor', () => {
  const redactor = new Redactor(['hunter2-password', 'tok_ABC123'])

  it('text replaces every occurrence, longest secret first', () => {
    expect(redactor.text('login with hunter2-password and hunter2-password')).toBe(
      `login with ${REDACTED} and ${REDACTED}`,
    )
    const nested = new Redactor(['abc', 'xxabcxx'])
    expect(nested.text('1 xxabcxx 2 abc')).toBe(`1 ${REDACTED} 2 ${REDACTED}`)
    expect(redactor.text('nothing here')).toBe('nothing here')
  })

  it('ignores secrets shorter than 3 characters and reports emptiness', () => {
    const tiny = new Redactor(['a', 'bc'])
    expect(tiny.isEmpty).toBe(true)
    expect(tiny.text('a bc')).toBe('a bc')
    expect(redactor.isEmpty).toBe(false)
  })

  it('fromSchema and merge combine secrets', () => {
    const a = Redactor.fromSchema(Credentials, { user: 'u', password: 'first-secret' })
    const b = new Redactor(['second-secret'])
    const merged = Redactor.merge(a, b)
    expect(merged.text('first-secret second-secret')).toBe(`${REDACTED} ${REDACTED}`)
  })

  it('value redacts strings deep inside a copy and keeps other values', () => {
    const bytes = new Uint8Array([1])
    const date = new Date(0)
    const input = {
      a: 'x tok_ABC123 y',
      list: ['hunter2-password', 3, null],
      bytes,
      date,
      n: 1n,
      deep: { e: new Error('tok_ABC123') },
    }
    const out = redactor.value(input)
    expect(out.a).toBe(`x ${REDACTED} y`)
    expect(out.list).toEqual([REDACTED, 3, null])
    expect(out.bytes).toBe(bytes)
    expect(out.date).toBe(date)
    expect(out.n).toBe(1n)
    expect(out.deep.e.message).toBe(REDACTED)
    expect(input.a).toBe('x tok_ABC123 y')
  })

  it('value handles cycles', () => {
    const cyclic: Record<string, unknown> = { s: 'tok_ABC123' }
    cyclic.self = cyclic
    const out = redactor.value(cyclic)
    expect(out.s).toBe(REDACTED)
    expect(out.self).toBe(out)
  })

  it('error redacts message, stack and the whole cause chain', () => {
    const root = new Error('root: password=hunter2-password')
    const middle = new Error('middle with tok_ABC123', { cause: root })
    const top = new Error('top', { cause: middle })
    const out = redactor.error(top)
    expect(out).not.toBe(top)
    const chain: Error[] = []
    for (let e: unknown = out; e instanceof Error; e = e.cause) chain.push(e)
    expect(chain).toHaveLength(3)
    for (const e of chain) {
      expect(e.message).not.toContain('hunter2-password')
      expect(e.message).not.toContain('tok_ABC123')
      expect(e.stack ?? '').not.toContain('hunter2-password')
      expect(e.stack ?? '').not.toContain('tok_ABC123')
    }
    expect(chain[2]!.message).toBe(`root: password=${REDACTED}`)
  })

  it('error redacts a ProviderError and keeps its fields, cursor and issues redacted', () => {
    const error = new ProviderError({
      kind: 'auth',
      message: 'login failed for hunter2-password',
      providerId: 'acme',
      operation: 'read',
      stream: 'users',
      cursor: { after: 'tok_ABC123', id: 4 },
      code: '28P01',
      retryAfterMs: 3,
      issues: [
        { path: '/credentials/password', rule: 'pattern', message: 'must match tok_ABC123' },
      ],
      cause: new Error('inner hunter2-password'),
    })
    const out = redactor.error(error)
    expect(ProviderError.isInstance(out)).toBe(true)
    expect(out.kind).toBe('auth')
    expect(out.providerId).toBe('acme')
    expect(out.operation).toBe('read')
    expect(out.stream).toBe('users')
    expect(out.code).toBe('28P01')
    expect(out.retryAfterMs).toBe(3)
    expect(out.message).toBe(`login failed for ${REDACTED}`)
    expect(out.cursor).toEqual({ after: REDACTED, id: 4 })
    expect(out.issues).toEqual([
      { path: '/credentials/password', rule: 'pattern', message: `must match ${REDACTED}` },
    ])
    expect((out.cause as Error).message).toBe(`inner ${REDACTED}`)
    expect(JSON.stringify(out)).not.toContain('hunter2')
    expect(out.stack).not.toContain('hunter2-password')
  })

  it('error replaces a driver error object by a plain error keeping name, message and code', () => {
    class DriverError extends Error {
      code = 'ECONNREFUSED'
      config = { password: 'hunter2-password', host: 'db' }
      query = 'SELECT 1'
    }
    const driver = new DriverError('connect failed')
    driver.name = 'DriverError'
    const out = redactor.error(
      new ProviderError({ kind: 'transient', message: 'x', cause: driver }),
    )
    const cause = out.cause as Error & Record<string, unknown>
    expect(cause).not.toBe(driver)
    expect(cause.name).toBe('DriverError')
    expect(cause.message).toBe('connect failed')
    expect(cause.code).toBe('ECONNREFUSED')
    expect(cause.config).toBeUndefined()
    expect(cause.query).toBeUndefined()
    const numeric = Object.assign(new Error('x'), { code: 1045 })
    expect((redactor.error(numeric) as Error & { code: number }).code).toBe(1045)
  })

  it('error redacts a cause that is not an Error', () => {
    const out = redactor.error(
      new ProviderError({
        kind: 'internal',
        message: 'x',
        cause: { config: { password: 'hunter2-password' } },
      }),
    )
    expect(JSON.stringify(out.cause)).not.toContain('hunter2-password')
    const stringCause = redactor.error(new Error('x', { cause: 'said tok_ABC123' }))
    expect(stringCause.cause).toBe(`said ${REDACTED}`)
  })

  it('error survives a cyclic cause chain', () => {
    const a = new Error('a hunter2-password')
    const b = new Error('b', { cause: a })
    ;(a as { cause?: unknown }).cause = b
    const out = redactor.error(a)
    expect(out.message).toBe(`a ${REDACTED}`)
    expect(((out.cause as Error).cause as Error).message).toBe(`a ${REDACTED}`)
  })

  it('error redacts an AggregateError’s message and keeps its code', () => {
    const aggregate = Object.assign(
      new AggregateError([new Error('hunter2-password')], 'all failed'),
      {
        code: 'ECONNREFUSED',
      },
    )
    const out = redactor.error(aggregate) as Error & { code?: string; errors?: unknown[] }
    expect(out.code).toBe('ECONNREFUSED')
    expect(JSON.stringify(out.errors ?? [])).not.toContain('hunter2')
  })

  it('error passes strings through text and other values unchanged when empty', () => {
    expect(redactor.error('a tok_ABC123')).toBe(`a ${REDACTED}`)
    const empty = new Redactor([])
    const error = new Error('hunter2-password')
    expect(empty.error(error)).toBe(error)
  })
})
