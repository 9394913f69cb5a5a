import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import { checkValue, validateValue } from './schema.js'
import { TlsSchema, tlsConnectOptions } from './tls.js'

const Params = Type.Object(
  { host: Type.String(), tls: Type.Optional(TlsSchema) },
  { additionalProperties: false },
)

describe('TlsSchema', () => {
  it('accepts the settings PostgreSQL and MySQL params took, and defaults mode to off', () => {
    for (const tls of [
      { mode: 'off' },
      { mode: 'require' },
      { mode: 'verify' },
      { mode: 'verify', ca: '-----BEGIN CERTIFICATE-----', servername: 'db.internal' },
      { ca: 'PEM' },
    ]) {
      expect(checkValue(TlsSchema, tls)).toEqual([])
    }
    expect(validateValue(TlsSchema, {})).toEqual({ mode: 'off' })
    expect(validateValue(Params, { host: 'h', tls: { ca: 'PEM' } }).tls).toEqual({
      mode: 'off',
      ca: 'PEM',
    })
    expect(validateValue(Params, { host: 'h' }).tls).toBeUndefined()
  })

  it('names the field and rule of a bad setting', () => {
    expect(checkValue(Params, { host: 'h', tls: { mode: 'on' } })).toContainEqual(
      expect.objectContaining({ path: '/tls/mode' }),
    )
    expect(checkValue(Params, { host: 'h', tls: { mode: 'verify', ca: '' } })).toEqual([
      expect.objectContaining({ path: '/tls/ca', rule: 'minLength' }),
    ])
    expect(checkValue(Params, { host: 'h', tls: { mode: 'verify', key: 'PEM' } })).toEqual([
      expect.objectContaining({ path: '/tls/key', rule: 'additionalProperties' }),
    ])
    expect(checkValue(Params, { host: 'h', tls: true })).toContainEqual(
      expect.objectContaining({ path: '/tls', rule: 'type' }),
    )
  })

  it('holds no secret field (a client key belongs in the credentials)', () => {
    expect(JSON.stringify(TlsSchema)).not.toContain('"secret"')
  })
})

describe('tlsConnectOptions', () => {
  it('maps each mode to Node TLS options', () => {
    expect(tlsConnectOptions(undefined)).toBeUndefined()
    expect(tlsConnectOptions({})).toBeUndefined()
    expect(tlsConnectOptions({ mode: 'off', ca: 'PEM' })).toBeUndefined()
    expect(tlsConnectOptions({ mode: 'require', ca: 'PEM', servername: 's' })).toEqual({
      rejectUnauthorized: false,
    })
    expect(tlsConnectOptions({ mode: 'verify' })).toEqual({ rejectUnauthorized: true })
    expect(tlsConnectOptions({ mode: 'verify', ca: 'PEM', servername: 'db.internal' })).toEqual({
      rejectUnauthorized: true,
      ca: 'PEM',
      servername: 'db.internal',
    })
  })
})
