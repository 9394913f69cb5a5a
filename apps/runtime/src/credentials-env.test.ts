import { mysqlProvider as mysql } from '@nvisy/provider-mysql'
import { natsProvider as nats } from '@nvisy/provider-nats'
import { postgresProvider as postgres } from '@nvisy/provider-postgres'
import s3 from '@nvisy/provider-s3'
import { describe, expect, it } from 'vitest'
import {
  credentialsFromEnv,
  credentialVariables,
  describeAlternatives,
  envNameOf,
} from './credentials-env.js'

/** A provider stand-in with a given credentials schema (only `definition.credentials` is read). */
function withSchema(credentials: unknown) {
  return { definition: { credentials } } as unknown as Parameters<typeof credentialsFromEnv>[0]
}

describe('envNameOf', () => {
  it('turns camelCase and punctuation into upper snake case', () => {
    expect(envNameOf('accessKeyId')).toBe('ACCESS_KEY_ID')
    expect(envNameOf('password')).toBe('PASSWORD')
    expect(envNameOf('serviceAccountJson')).toBe('SERVICE_ACCOUNT_JSON')
    expect(envNameOf('api-key')).toBe('API_KEY')
  })
})

describe('credentialsFromEnv', () => {
  it('reads the fields of a flat schema; PREFIX and PREFIX_ are the same', () => {
    expect(credentialsFromEnv(postgres, 'PG', { PG_USER: 'app', PG_PASSWORD: 'pw' })).toEqual({
      credentials: { user: 'app', password: 'pw' },
      variables: { '/user': 'PG_USER', '/password': 'PG_PASSWORD', '/url': 'PG_URL' },
      read: ['PG_USER', 'PG_PASSWORD'],
    })
    expect(credentialsFromEnv(postgres, 'PG_', { PG_USER: 'app' }).credentials).toEqual({
      user: 'app',
    })
  })

  it('reads the fields of every anyOf branch (MySQL: user and password, or a URL)', () => {
    // The defect this replaces read only top-level `properties`: none here, so nothing was read.
    expect(Object.values(credentialVariables(mysql.definition.credentials, 'MYSQL'))).toEqual([
      expect.objectContaining({ pointer: '/user', variable: 'MYSQL_USER' }),
      expect.objectContaining({ pointer: '/password', variable: 'MYSQL_PASSWORD' }),
      expect.objectContaining({ pointer: '/url', variable: 'MYSQL_URL' }),
    ])
    const pair = credentialsFromEnv(mysql, 'MYSQL', { MYSQL_USER: 'root', MYSQL_PASSWORD: '' })
    expect(pair.credentials).toEqual({ user: 'root', password: '' })
    expect(() => mysql.validateInput({ params: {}, credentials: pair.credentials })).not.toThrow()
    const url = credentialsFromEnv(mysql, 'MYSQL', { MYSQL_URL: 'mysql://root@127.0.0.1/test' })
    expect(url.credentials).toEqual({ url: 'mysql://root@127.0.0.1/test' })
    expect(() => mysql.validateInput({ params: {}, credentials: url.credentials })).not.toThrow()
  })

  it('NATS: every branch (token, user and password, creds file), and none for no authentication', () => {
    expect(credentialVariables(nats.definition.credentials, 'N').map((v) => v.variable)).toEqual([
      'N_TOKEN',
      'N_USER',
      'N_PASSWORD',
      'N_CREDS',
    ])
    expect(credentialsFromEnv(nats, 'N', { N_TOKEN: 't' }).credentials).toEqual({ token: 't' })
    expect(credentialsFromEnv(nats, 'N', {}).read).toEqual([])
  })

  it('S3: fields tied by dependencies are all read', () => {
    expect(
      credentialsFromEnv(s3, 'S3', { S3_ACCESS_KEY_ID: 'AKIA', S3_SECRET_ACCESS_KEY: 'k' })
        .credentials,
    ).toEqual({ accessKeyId: 'AKIA', secretAccessKey: 'k' })
  })

  it('nested objects from PREFIX_OBJECT__FIELD, $refs followed, non-strings as JSON', () => {
    const schema = {
      type: 'object',
      $defs: {
        tls: {
          type: 'object',
          properties: { ca: { type: 'string' }, verify: { type: 'boolean' } },
        },
      },
      properties: {
        apiKey: { type: 'string' },
        tls: { $ref: '#/$defs/tls' },
        retries: { type: 'integer' },
        scopes: { type: 'array', items: { type: 'string' } },
      },
    }
    const provider = withSchema(schema)
    expect(credentialVariables(schema, 'X').map((v) => v.variable)).toEqual([
      'X_API_KEY',
      'X_TLS',
      'X_TLS__CA',
      'X_TLS__VERIFY',
      'X_RETRIES',
      'X_SCOPES',
    ])
    expect(
      credentialsFromEnv(provider, 'X', {
        X_TLS__CA: '-----BEGIN CERTIFICATE-----',
        X_TLS__VERIFY: 'false',
        X_RETRIES: '3',
        X_SCOPES: '["read","write"]',
      }).credentials,
    ).toEqual({
      tls: { ca: '-----BEGIN CERTIFICATE-----', verify: false },
      retries: 3,
      scopes: ['read', 'write'],
    })
    // The whole object as JSON, when none of its fields' variables is set.
    expect(credentialsFromEnv(provider, 'X', { X_TLS: '{"ca": "c"}' }).credentials).toEqual({
      tls: { ca: 'c' },
    })
    expect(() =>
      credentialsFromEnv(provider, 'X', { X_TLS: '{"ca": "c"}', X_TLS__CA: 'd' }),
    ).toThrow("set either X_TLS (the whole object as JSON) or its fields' variables (X_TLS__CA)")
  })

  it('a value that is not JSON where JSON is needed names the variable, never the value', () => {
    const provider = withSchema({ type: 'object', properties: { port: { type: 'integer' } } })
    expect(() => credentialsFromEnv(provider, 'X', { X_PORT: 'not-json-s3cret' })).toThrow(
      /^\/credentials\/port: X_PORT must hold JSON \(integer\)$/,
    )
  })
})

describe('describeAlternatives', () => {
  it('names each anyOf branch with its variables, required ones marked', () => {
    expect(describeAlternatives(mysql.definition.credentials, 'MYSQL')).toBe(
      'User and password (MYSQL_USER required, MYSQL_PASSWORD) or Connection URL (MYSQL_URL required)',
    )
    expect(describeAlternatives(nats.definition.credentials, 'NATS')).toBe(
      'No authentication (no variables) or Token (NATS_TOKEN required) or User and password (NATS_USER required, NATS_PASSWORD required) or Creds file (JWT + NKey) (NATS_CREDS required)',
    )
    expect(describeAlternatives(postgres.definition.credentials, 'PG')).toBeUndefined()
  })
})
