import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { poolOptions } from './mysql-connection.js'
import { mysqlProvider } from './mysql-provider.js'

const validate = (input: { credentials: unknown; params: unknown }) =>
  mysqlProvider.validateInput(input)

describe('settings', () => {
  it('builds pool options with exact-value settings and TLS modes', () => {
    const params = validate({
      credentials: { user: 'u', password: 'p' },
      params: { host: 'db', database: 'd' },
    }).params
    expect(params.poolSize).toBe(10)
    const options = poolOptions({ user: 'u', password: 'p' }, params)
    expect(options).toMatchObject({
      host: 'db',
      port: 3306,
      user: 'u',
      password: 'p',
      database: 'd',
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      jsonStrings: true,
      multipleStatements: false,
    })
    expect(options.ssl).toBeUndefined()
    expect(poolOptions({ user: 'u' }, { ...params, tls: { mode: 'require' } }).ssl).toEqual({
      rejectUnauthorized: false,
    })
    expect(
      poolOptions({ user: 'u' }, { ...params, tls: { mode: 'verify', ca: 'PEM' } }).ssl,
    ).toEqual({
      rejectUnauthorized: true,
      ca: 'PEM',
    })
    expect(
      poolOptions({ user: 'u' }, { ...params, tls: { mode: 'verify', servername: 'db.internal' } })
        .ssl,
    ).toEqual({ rejectUnauthorized: true, servername: 'db.internal' })
    expect(poolOptions({ user: 'u' }, { ...params, tls: {} }).ssl).toBeUndefined()
  })

  it('reads user, password, host, port and database from a URL; params win', () => {
    const options = poolOptions(
      { url: 'mysql://us%40er:p%3Ass@h:3307/my%20db' },
      { poolSize: 2, connectTimeoutMs: 5 },
    )
    expect(options).toMatchObject({
      user: 'us@er',
      password: 'p:ss',
      host: 'h',
      port: 3307,
      database: 'my db',
      connectionLimit: 2,
    })
    expect(
      poolOptions({ url: 'mysql://u@h/x' }, { host: 'other', database: 'y' } as never),
    ).toMatchObject({ host: 'other', database: 'y' })
  })

  it('refuses missing hosts and bad URLs without quoting the secret', () => {
    expect(() => poolOptions({ user: 'u' }, {} as never)).toThrow(/\/params\/host/)
    const error = (() => {
      try {
        poolOptions({ url: 'mysql://u:s3cret-value@[bad' }, {} as never)
      } catch (e) {
        return e as ProviderError
      }
    })()
    expect(ProviderError.isInstance(error)).toBe(true)
    expect(error!.kind).toBe('config')
    expect(error!.message).not.toContain('s3cret-value')
  })

  it('rejects bad params with the field path', () => {
    expect(() => validate({ credentials: { user: 'u' }, params: { host: 'h', port: 0 } })).toThrow(
      /\/params\/port/,
    )
    expect(() =>
      validate({ credentials: { user: 'u' }, params: { host: 'h', tls: { mode: 'maybe' } } }),
    ).toThrow(/\/params\/tls\/mode/)
    expect(() =>
      mysqlProvider.validateStream({ table: 't', filter: [{ column: 'a', op: 'drop' }] }),
    ).toThrow(/\/stream\/filter\/0\/op/)
    expect(() => mysqlProvider.validateSinkStream({ table: 't', mode: 'merge' })).toThrow(
      /\/stream\/mode/,
    )
  })

  it('marks secrets and describes itself', () => {
    const redactor = mysqlProvider.redactor({
      credentials: { user: 'u', password: 'hunter22' },
      params: {},
    })
    expect(redactor.text('login hunter22 failed')).not.toContain('hunter22')
    const description = mysqlProvider.describe()
    expect(description).toMatchObject({
      id: 'mysql',
      capabilities: { read: true, write: true, discover: true, incremental: true },
    })
  })
})
