import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import {
  canonicalJson,
  Destination,
  destinationDigest,
  destinationParams,
  LocalPath,
  localPathParams,
} from './param-marks.js'
import { validateValue } from './schema.js'

const Params = Type.Object({
  host: Destination(Type.String()),
  port: Destination(Type.Integer()),
  tls: Type.Optional(Destination(Type.Object({ rejectUnauthorized: Type.Boolean() }))),
  poolSize: Type.Optional(Type.Integer()),
})

describe('destination params', () => {
  it('binds the marked params only, so tuning params may change', () => {
    const a = destinationDigest(Params, { host: 'db', port: 5432, poolSize: 4 })
    expect(destinationDigest(Params, { port: 5432, host: 'db', poolSize: 16 })).toBe(a)
    expect(destinationDigest(Params, { host: 'evil', port: 5432, poolSize: 4 })).not.toBe(a)
    expect(destinationDigest(Params, { host: 'db', port: 5433, poolSize: 4 })).not.toBe(a)
    expect(
      destinationDigest(Params, { host: 'db', port: 5432, tls: { rejectUnauthorized: false } }),
    ).not.toBe(a)
    expect(destinationParams(Params, { host: 'db', port: 5432, poolSize: 4 })).toEqual({
      '/host': 'db',
      '/port': 5432,
    })
  })

  it('binds every param when a schema marks none (fail closed)', () => {
    const Bare = Type.Object({ url: Type.String(), timeoutMs: Type.Optional(Type.Integer()) })
    const a = destinationDigest(Bare, { url: 'http://a' })
    expect(destinationDigest(Bare, { url: 'http://a', timeoutMs: 5 })).not.toBe(a)
    expect(destinationParams(Bare, { url: 'http://a' })).toEqual({ '/': { url: 'http://a' } })
  })

  it('marks do not change validation', () => {
    expect(validateValue(Params, { host: 'h', port: 1 })).toEqual({ host: 'h', port: 1 })
    expect(() => validateValue(Params, { host: 'h', port: 'x' })).toThrow(/\/port/)
  })

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: undefined } })).toBe(
      '{"a":{"d":[2,{"y":null,"z":1}]},"b":1}',
    )
  })

  it('finds local paths', () => {
    const Fs = Type.Object({ root: LocalPath(Type.String()), mode: Type.Optional(Type.String()) })
    expect([...localPathParams(Fs, { root: '/data', mode: 'x' })]).toEqual([['/root', '/data']])
  })
})
