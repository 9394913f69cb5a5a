import { describe, expect, it } from 'vitest'
import { poolConfig, postgresProvider } from './index.js'
import { classifyPostgresError, kindOfSqlState } from './postgres-errors.js'

describe('postgres error classification', () => {
  it.each([
    ['28P01', 'auth'],
    ['28000', 'auth'],
    ['3D000', 'config'],
    ['42P01', 'not_found'],
    ['42703', 'config'],
    ['40P01', 'transient'],
    ['40001', 'transient'],
    ['53300', 'transient'],
    ['57P01', 'transient'],
    ['08006', 'transient'],
    ['23505', 'data'],
    ['23514', 'data'],
    ['22P02', 'data'],
    ['22003', 'data'],
    ['21000', 'data'],
  ])('SQLSTATE %s is %s', (code, kind) => {
    expect(kindOfSqlState(code)).toBe(kind)
    expect(classifyPostgresError(Object.assign(new Error('boom'), { code }))?.kind).toBe(kind)
  })
  it('classifies socket errors and pg connection messages', () => {
    expect(classifyPostgresError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))?.kind).toBe(
      'transient',
    )
    expect(classifyPostgresError(new Error('Connection terminated unexpectedly'))?.kind).toBe(
      'transient',
    )
    expect(
      classifyPostgresError(new Error('The server does not support SSL connections'))?.kind,
    ).toBe('config')
    expect(classifyPostgresError(new Error('something else'))).toBeUndefined()
  })
  it('names the table, column and constraint', () => {
    const error = classifyPostgresError(
      Object.assign(new Error('new row violates check constraint'), {
        code: '23514',
        schema: 's',
        table: 't',
        constraint: 'c',
      }),
    )
    expect(error?.message).toBe('new row violates check constraint (table s.t, constraint c)')
  })
})

describe('postgres connection settings', () => {
  const params = (extra: Record<string, unknown> = {}) =>
    postgresProvider.validateInput({
      credentials: { user: 'u', password: 'p' },
      params: { host: 'h', database: 'd', ...extra },
    }).params
  it('builds the pool with UTC session settings and TLS modes', () => {
    const config = poolConfig(
      { user: 'u', password: 'p' },
      params({ statementTimeoutMs: 5000, tls: { mode: 'verify', ca: 'PEM' } }),
    )
    expect(config).toMatchObject({
      host: 'h',
      port: 5432,
      database: 'd',
      user: 'u',
      max: 4,
      statement_timeout: 5000,
    })
    expect(config.options).toContain('-c TimeZone=UTC')
    expect(config.ssl).toEqual({ rejectUnauthorized: true, ca: 'PEM' })
    expect(poolConfig({ user: 'u' }, params({ tls: { mode: 'require' } })).ssl).toEqual({
      rejectUnauthorized: false,
    })
    expect(
      poolConfig({ user: 'u' }, params({ tls: { mode: 'verify', servername: 'db.internal' } })).ssl,
    ).toEqual({ rejectUnauthorized: true, servername: 'db.internal' })
    // Plain TCP is said explicitly, unless a URL (whose sslmode decides) is given.
    expect(poolConfig({ user: 'u' }, params({ tls: {} })).ssl).toBe(false)
    expect(poolConfig({ user: 'u' }, params()).ssl).toBe(false)
    expect(poolConfig({ url: 'postgres://u@h/d?sslmode=require' }, params()).ssl).toBeUndefined()
    expect(() => params({ tls: { mode: 'on' } })).toThrow(/\/params\/tls\/mode/)
  })
  it('refuses missing fields with their path, and bad values through the schema', () => {
    expect(() => poolConfig({ password: 'p' }, params())).toThrow(/\/credentials\/user/)
    expect(() => postgresProvider.validateInput({ credentials: {}, params: { port: 0 } })).toThrow(
      /\/params\/port/,
    )
    expect(() =>
      postgresProvider.validateStream({
        table: 't',
        filter: [{ column: 'a', op: 'like', value: 'x' }],
      }),
    ).toThrow(/\/stream\/filter\/0\/op/)
  })
  it('marks the password and URL secret', () => {
    const redactor = postgresProvider.redactor({
      credentials: { url: 'postgres://u:hunter22@h/d' },
      params: {},
    })
    expect(redactor.text('failed with hunter22')).not.toContain('hunter22')
  })
})
