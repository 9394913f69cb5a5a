import { Type } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { ProviderError } from './errors.js'
import {
  checkValue,
  compileSchema,
  EmptyObject,
  formatIssues,
  isSecretSchema,
  Secret,
  validateValue,
} from './schema.js'

const Params = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    ssl: Type.Boolean({ default: false }),
    mode: Type.Union([Type.Literal('read'), Type.Literal('write')], { default: 'read' }),
    url: Type.Optional(Type.String({ format: 'uri' })),
    level: Type.Optional(Type.String({ enum: ['low', 'high'] })),
  },
  { additionalProperties: false },
)

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

describe('validateValue', () => {
  it('returns the value with defaults applied', () => {
    const value = validateValue(Params, { host: 'db' }, { what: 'params' })
    expect(value).toEqual({ host: 'db', port: 5432, ssl: false, mode: 'read' })
  })

  it('does not modify the caller’s object, and accepts a frozen one', () => {
    const input = { host: 'db' }
    const value = validateValue(Params, input, { what: 'params' })
    expect(value.port).toBe(5432)
    expect(input).toEqual({ host: 'db' })
    const frozen = Object.freeze({ host: 'db', nested: undefined })
    const Frozen = Type.Object({ host: Type.String(), port: Type.Integer({ default: 1 }) })
    expect(validateValue(Frozen, Object.freeze({ host: 'db' }), { what: 'params' })).toEqual({
      host: 'db',
      port: 1,
    })
    expect(frozen.host).toBe('db')
  })

  it('applies defaults in nested objects and keeps non-JSON values as they are', () => {
    const Schema = Type.Object({
      inner: Type.Object({ n: Type.Number({ default: 3 }) }),
      bytes: Type.Any(),
    })
    const bytes = new Uint8Array([1, 2])
    const value = validateValue(Schema, { inner: {}, bytes }, { what: 'x' })
    expect(value.inner.n).toBe(3)
    expect(value.bytes).toBe(bytes)
  })

  it('lists every failing field with its JSON pointer and rule', () => {
    const error = configError(() =>
      validateValue(
        Params,
        { port: 0, ssl: 'yes', extra: 1, url: 'not a url', level: 'medium', mode: 'delete' },
        { what: 'acme params', pathPrefix: '/params', providerId: 'acme', operation: 'connect' },
      ),
    )
    const pairs = error.issues!.map((issue) => `${issue.path} ${issue.rule}`)
    expect(pairs).toEqual(
      expect.arrayContaining([
        '/params/host required',
        '/params/port minimum',
        '/params/ssl type',
        '/params/extra additionalProperties',
        '/params/url format',
        '/params/level enum',
      ]),
    )
    expect(pairs.some((p) => p.startsWith('/params/mode '))).toBe(true)
    expect(error.providerId).toBe('acme')
    expect(error.operation).toBe('connect')
    expect(error.message.startsWith('invalid acme params: ')).toBe(true)
    for (const issue of error.issues!) {
      expect(error.message).toContain(issue.path)
      expect(error.message).toContain(`(${issue.rule})`)
      expect(issue.message.length).toBeGreaterThan(0)
    }
    expect(error.message).toContain('unknown property "extra"')
    expect(error.message).toContain('must be >= 1')
    expect(error.message).toContain('must be one of ["low","high"]')
  })

  it('reports a failure at the root as "/"', () => {
    const error = configError(() => validateValue(Params, 'a string', { what: 'params' }))
    expect(error.issues).toEqual([{ path: '/', rule: 'type', message: 'must be object' }])
  })

  it('escapes property names in JSON pointers', () => {
    const Schema = Type.Object({ 'a/b': Type.String(), 'c~d': Type.String() })
    const error = configError(() => validateValue(Schema, {}, { what: 'x', pathPrefix: '/p' }))
    expect(error.issues!.map((i) => i.path).sort()).toEqual(['/p/a~1b', '/p/c~0d'])
  })

  it('never echoes the failing value', () => {
    const secret = 'sk_live_51HzSECRETvalue'
    const Creds = Type.Object(
      {
        token: Secret(Type.String({ pattern: '^tok_', minLength: 40 })),
        pin: Type.Integer(),
        kind: Type.String({ enum: ['a', 'b'] }),
        url: Type.String({ format: 'uri' }),
        mode: Type.Literal('fixed'),
      },
      { additionalProperties: false },
    )
    const error = configError(() =>
      validateValue(
        Creds,
        { token: secret, pin: secret, kind: secret, url: secret, mode: secret },
        { what: 'creds' },
      ),
    )
    expect(error.issues!.length).toBeGreaterThanOrEqual(5)
    const serialized = JSON.stringify({
      message: error.message,
      stack: error.stack,
      json: error.toJSON(),
    })
    expect(serialized).not.toContain(secret)
    expect(serialized).not.toContain('SECRET')
  })

  it('rejects undefined against an object schema', () => {
    const error = configError(() => validateValue(Params, undefined, { what: 'params' }))
    expect(error.issues![0]!.rule).toBe('type')
  })
})

describe('compileSchema', () => {
  it('compiles a schema once and reuses the function', () => {
    const Schema = Type.Object({ a: Type.String() })
    const first = compileSchema(Schema)
    expect(compileSchema(Schema)).toBe(first)
    // An equal but distinct schema object gets its own validator.
    const other = compileSchema(Type.Object({ a: Type.String() }))
    expect(other).not.toBe(first)
    expect(first({ a: 'x' })).toBe(true)
    expect(first({ a: 1 })).toBe(false)
  })

  it('compiles two different schemas that share an $id', () => {
    expect(() => compileSchema(Type.Object({ a: Type.String() }, { $id: 'Dup' }))).not.toThrow()
    const second = Type.Object({ b: Type.String() }, { $id: 'Dup' })
    expect(() => compileSchema(second)).not.toThrow()
    expect(compileSchema(second)({ b: 'x' })).toBe(true)
    expect(compileSchema(second)({ b: 1 })).toBe(false)
  })

  it('compiles a recursive schema', () => {
    const Node = Type.Recursive(
      (This) => Type.Object({ name: Type.String(), children: Type.Array(This) }),
      { $id: 'TreeNode' },
    )
    const validate = compileSchema(Node)
    expect(validate({ name: 'a', children: [{ name: 'b', children: [] }] })).toBe(true)
    expect(validate({ name: 'a', children: [{ name: 1, children: [] }] })).toBe(false)
    const again = Type.Recursive(
      (This) => Type.Object({ id: Type.Number(), next: Type.Array(This) }),
      { $id: 'TreeNode' },
    )
    expect(compileSchema(again)({ id: 1, next: [{ id: 2, next: [] }] })).toBe(true)
  })

  // Schemas are not checked against the meta-schema (a start-up cost): a provider's malformed
  // schema must still fail when it is compiled, naming the keyword, not validate anything.
  it.each([
    [{ type: 'strin' }, /type must be JSONType/],
    [{ type: 'object', properties: { a: { type: 'integer', minimum: 'x' } } }, /minimum value/],
    [{ type: 'object', required: 'a' }, /required value/],
    [{ type: 'string', pattern: '([' }, /pattern|Invalid regular expression/],
  ])('refuses the malformed schema %j when compiling it', (schema, message) => {
    expect(() => compileSchema(schema as never)).toThrow(message)
  })
})

describe('checkValue and formatIssues', () => {
  it('returns issues instead of throwing', () => {
    expect(checkValue(Params, { host: 'h' })).toEqual([])
    const issues = checkValue(Params, { host: 1 }, '/stream')
    expect(issues).toEqual([{ path: '/stream/host', rule: 'type', message: 'must be string' }])
    expect(formatIssues(issues)).toBe('/stream/host must be string (type)')
  })

  it('EmptyObject accepts {} and rejects extra properties', () => {
    expect(checkValue(EmptyObject, {})).toEqual([])
    expect(checkValue(EmptyObject, { a: 1 }).map((i) => i.rule)).toEqual(['additionalProperties'])
  })
})

describe('Secret', () => {
  it('marks the schema secret and writeOnly, keeping its constraints', () => {
    const schema = Secret(Type.String({ minLength: 8 }))
    expect(schema).toMatchObject({ type: 'string', minLength: 8, secret: true, writeOnly: true })
    expect(isSecretSchema(schema)).toBe(true)
    expect(isSecretSchema(Type.String())).toBe(false)
    expect(isSecretSchema(null)).toBe(false)
  })

  it('does not change the schema it is given', () => {
    const base = Type.String()
    Secret(base)
    expect(isSecretSchema(base)).toBe(false)
  })

  it('validates with the shared Ajv and with a strict standalone Ajv', () => {
    const Creds = Type.Object({
      password: Secret(Type.String({ minLength: 8 })),
      hint: Type.Optional(Secret(Type.String())),
    })
    expect(validateValue(Creds, { password: 'long enough' }, { what: 'c' })).toEqual({
      password: 'long enough',
    })
    expect(checkValue(Creds, { password: 'short' }).map((i) => i.rule)).toEqual(['minLength'])
    const strict = new Ajv({ strict: true })
    strict.addKeyword('secret')
    expect(strict.validate(Creds, { password: 'long enough' })).toBe(true)
  })
})
