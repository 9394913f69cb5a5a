import { createCurve, fromCurveSeed } from '@nats-io/nkeys'
import { SealedCredentialsPlaintextSchema, validateMessage } from '@nvisy/protocol'
import {
  canonicalJson,
  Destination,
  destinationParams,
  ProviderError,
  Type,
} from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  type CredentialScope,
  connectionInput,
  credentialBinding,
  credentialIssues,
  expectedBinding,
  isCurvePublicKey,
  openSealedCredentials,
  runtimeKeyPair,
  type SealOptions,
  sealCredentials,
  sealedPlaintext,
} from './credentials.js'
import { redactSecretFields, secretSafeLogger } from './logging.js'

const server = createCurve()
const runtime = createCurve()
const policy = { serverPublicKey: server.getPublicKey(), allowPlainCredentials: false }
const encoder = new TextEncoder()

const ParamsSchema = Type.Object({
  host: Destination(Type.String()),
  port: Destination(Type.Integer()),
  database: Destination(Type.String()),
  tls: Type.Optional(Type.Object({ mode: Destination(Type.String()) })),
  poolSize: Type.Optional(Type.Integer()),
})
const params = { host: 'db.example.com', port: 5432, database: 'analytics', poolSize: 4 }
const scope: CredentialScope = { operation: 'run', runId: 'run-1', nodeId: 'src' }
const bindingInput = { provider: 'postgres', paramsSchema: ParamsSchema, params }

function seal(
  credentials: Record<string, unknown>,
  options: Partial<SealOptions> = {},
  s: CredentialScope = scope,
  from = server,
  to = runtime.getPublicKey(),
) {
  return sealCredentials(from, to, credentials, s, { ...bindingInput, ...options })
}

function open(sealed: string, expected = expectedBinding(scope, bindingInput), now?: number) {
  return openSealedCredentials(
    runtime,
    server.getPublicKey(),
    sealed,
    expected,
    'node src',
    '/p',
    now === undefined ? {} : { now },
  )
}

function thrown(fn: () => unknown): ProviderError {
  try {
    fn()
  } catch (error) {
    if (ProviderError.isInstance(error)) return error
    throw error
  }
  throw new Error('expected a ProviderError')
}

describe('sealed credentials v2: test vectors (docs/protocol.md)', () => {
  // Fixed keys and inputs: the Rust server must produce exactly these bytes.
  const serverKey = fromCurveSeed(
    encoder.encode('SXAHIZXGPLSOOLK7WMPCTGRFACUIETKKN3HMFCUOXVXUOJOB2GDM435IQ4'),
  )
  const runtimeKey = fromCurveSeed(
    encoder.encode('SXALQQKHO4ZGUZPOSNZLGNL2VSTVHV7HR44LEFXUO7LO3BBXQDG4EHZK7M'),
  )
  const vectorParams = {
    host: 'db.example.com',
    port: 5432,
    database: 'analytics',
    tls: { mode: 'verify' },
    poolSize: 4,
  }
  const options: SealOptions = {
    provider: 'postgres',
    paramsSchema: ParamsSchema,
    params: vectorParams,
    now: 1_767_225_600_000,
    ttlMs: 300_000,
    nonce: Uint8Array.from({ length: 16 }, (_, i) => i),
    boxNonce: Uint8Array.from({ length: 24 }, (_, i) => 0x20 + i),
  }
  const vectorScope: CredentialScope = { operation: 'run', runId: 'run-0001', nodeId: 'src' }
  const credentials = { user: 'loader', password: 'correct horse battery staple' }
  const DIGEST = '860e6e06e4b9eab9849a2e6596031a45b68d6f5d52d66f0a36544bac7918d835'
  const PLAINTEXT =
    '{"binding":{"destination":"860e6e06e4b9eab9849a2e6596031a45b68d6f5d52d66f0a36544bac7918d835","expiresAt":1767225900000,"nodeId":"src","nonce":"AAECAwQFBgcICQoLDA0ODw==","operation":"run","provider":"postgres","runId":"run-0001"},"credentials":{"password":"correct horse battery staple","user":"loader"},"v":2}'
  const SEALED =
    'eGt2MSAhIiMkJSYnKCkqKywtLi8wMTIzNDU2N5On/fQWhKLrJNKl9NHKT36LXjT9ENKMquFncJ/aAmioahMmBG7nDg6EFzCUaRuqiyFta5pTMezexveRGfX8glPdSthwq4deTHqIRjD4pgAefr+6iCoVXOTTxmiKBMumblWqJ94ISM+FF/MPngJVgCtumhUSQ2aoznmwIIisAgdY2ipga+MeOaRdNZy9PisoQWW6EVoIfTTLW2bZW/tOipFZuy0/Vkw5BZFmF5g36k5Cc77qitfi+56VujorWOsfyyCkchbg3rcUhq18Dz6bqMVJph+GNqvLGfQQvt+ppK6FKk8K5UDYTxL1kh2YUAm58a0aEQ3tjm1RG+y4n2fqYZsxrekA5FrMRE7El8vOu8EYCWD4Jvr+AofVkUk7tQRCh+Wkj71xIw2f4N82MVLHZS2+4ytSciNj8j64SVOuTSa8gZLg0wI='

  it('keys, destination params and digest', () => {
    expect(serverKey.getPublicKey()).toBe(
      'XAVEOTRLBMGJADTLPKC5W5EEERJKOLIMUXP7GOWXCCD3VS3CUO2GYU62',
    )
    expect(runtimeKey.getPublicKey()).toBe(
      'XA5ZKVSBQE75NY7H4QLT4FE3TX2TCZABIAB2BLU2CHONI6EKEUNBPV4P',
    )
    expect(canonicalJson(destinationParams(ParamsSchema, vectorParams))).toBe(
      '{"/database":"analytics","/host":"db.example.com","/port":5432,"/tls/mode":"verify"}',
    )
    expect(expectedBinding(vectorScope, options).destination).toBe(DIGEST)
    // A schema that marks nothing binds every param.
    const unmarked = Type.Object({ host: Type.String(), port: Type.Integer() })
    expect(canonicalJson(destinationParams(unmarked, { port: 5432, host: 'db.example.com' }))).toBe(
      '{"/":{"host":"db.example.com","port":5432}}',
    )
    expect(
      expectedBinding(vectorScope, {
        provider: 'x',
        paramsSchema: unmarked,
        params: { port: 5432, host: 'db.example.com' },
      }).destination,
    ).toBe('96dda47021d45ae6a5370fafd2c583f62bf9e2d81a31e08f7ced0a104b7a4c9c')
  })

  it('the exact plaintext bytes, valid against credentials.sealed.json', () => {
    const plaintext = sealedPlaintext(credentialBinding(vectorScope, options), credentials)
    expect(new TextDecoder().decode(plaintext)).toBe(PLAINTEXT)
    const checked = validateMessage(SealedCredentialsPlaintextSchema, JSON.parse(PLAINTEXT))
    expect(checked.ok ? [] : checked.issues).toEqual([])
  })

  it('the fixed sealed blob: produced with the fixed nonces, opened and accepted at a fixed time', () => {
    expect(
      sealCredentials(serverKey, runtimeKey.getPublicKey(), credentials, vectorScope, options),
    ).toBe(SEALED)
    const expected = expectedBinding(vectorScope, options)
    const opened = openSealedCredentials(
      runtimeKey,
      serverKey.getPublicKey(),
      SEALED,
      expected,
      'node src',
      '/p',
      { now: 1_767_225_660_000 },
    )
    expect(opened.credentials).toEqual(credentials)
    expect(opened.binding.nonce).toBe('AAECAwQFBgcICQoLDA0ODw==')
    // At its expiry the same blob is refused.
    const late = thrown(() =>
      openSealedCredentials(runtimeKey, serverKey.getPublicKey(), SEALED, expected, 'n', '/p', {
        now: 1_767_225_900_000,
      }),
    )
    expect(late.issues?.[0]?.rule).toBe('expired')
  })
})

describe('sealed credentials v2', () => {
  it('open what the configured server sealed to this runtime for this use', () => {
    const opened = open(seal({ password: 'p4ssw0rd!' }))
    expect(opened.credentials).toEqual({ password: 'p4ssw0rd!' })
    expect(opened.binding).toMatchObject({ operation: 'run', runId: 'run-1', nodeId: 'src' })
    expect(opened.binding.nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/)
    expect(isCurvePublicKey(runtime.getPublicKey())).toBe(true)
  })

  it('refuse another sender, another recipient, tampering, never quoting them', () => {
    const other = createCurve()
    const cases = [
      seal({ password: 'p4ssw0rd!' }, {}, scope, other),
      seal({ password: 'p4ssw0rd!' }, {}, scope, server, other.getPublicKey()),
    ]
    const bytes = Buffer.from(seal({ a: 1 }), 'base64')
    bytes[bytes.length - 1]! ^= 1
    cases.push(bytes.toString('base64'))
    for (const sealed of cases) {
      const error = thrown(() => open(sealed))
      expect(error.kind).toBe('auth')
      expect(error.issues).toEqual([expect.objectContaining({ path: '/p', rule: 'sealed' })])
      expect(error.message).toMatch(
        /^node src: sealed credentials refused: they could not be opened/,
      )
      expect(error.message).not.toContain(sealed)
    }
    expect(
      thrown(() =>
        openSealedCredentials(
          runtime,
          undefined,
          cases[0]!,
          expectedBinding(scope, bindingInput),
          'n',
        ),
      ).message,
    ).toMatch(/no server public key/)
  })

  it('refuse every binding mismatch, naming the field, never the secret', () => {
    const sealed = seal({ password: 'p4ssw0rd!' })
    const mismatches: [Parameters<typeof expectedBinding>, string][] = [
      [[{ ...scope, runId: 'run-2' }, bindingInput], 'runId'],
      [[{ ...scope, nodeId: 'dst' }, bindingInput], 'nodeId'],
      [[scope, { ...bindingInput, provider: 'mysql' }], 'provider'],
      [
        [scope, { ...bindingInput, params: { ...params, host: 'evil.example' } }],
        'destination params',
      ],
      [[scope, { ...bindingInput, params: { ...params, port: 15432 } }], 'destination params'],
      [
        [scope, { ...bindingInput, params: { ...params, tls: { mode: 'off' } } }],
        'destination params',
      ],
      [[{ operation: 'check', requestId: 'run-1' }, bindingInput], 'operation'],
    ]
    for (const [args, field] of mismatches) {
      const error = thrown(() => open(sealed, expectedBinding(...args)))
      expect(error.kind).toBe('auth')
      expect(error.issues).toEqual([expect.objectContaining({ path: '/p', rule: 'binding' })])
      expect(error.message).toContain(field)
      expect(error.message).not.toContain('p4ssw0rd!')
    }
    // A param that is not a destination (pool size) may change.
    expect(
      open(sealed, expectedBinding(scope, { ...bindingInput, params: { ...params, poolSize: 9 } }))
        .credentials,
    ).toEqual({ password: 'p4ssw0rd!' })
    // A check blob binds its connection id.
    const check: CredentialScope = { operation: 'check', requestId: 'q1', connectionId: 'c1' }
    const checkBlob = seal({ a: 'b' }, {}, check)
    expect(open(checkBlob, expectedBinding(check, bindingInput)).credentials).toEqual({ a: 'b' })
    expect(
      thrown(() =>
        open(checkBlob, expectedBinding({ operation: 'check', requestId: 'q1' }, bindingInput)),
      ).message,
    ).toContain('connectionId')
  })

  it('refuse expired blobs and blobs valid for too long', () => {
    const now = Date.now()
    expect(
      thrown(() => open(seal({ a: 'b' }, { now: now - 120_000, ttlMs: 60_000 }))).issues?.[0]?.rule,
    ).toBe('expired')
    expect(thrown(() => open(seal({ a: 'b' }, { ttlMs: 3_600_000 }))).issues?.[0]?.rule).toBe(
      'expiresAt',
    )
    expect(open(seal({ a: 'b' }, { ttlMs: 15 * 60_000 })).credentials).toEqual({ a: 'b' })
  })

  it('refuse v1 (bare credentials), other versions and malformed bindings', () => {
    const raw = (value: unknown) =>
      Buffer.from(
        server.seal(encoder.encode(JSON.stringify(value)), runtime.getPublicKey()),
      ).toString('base64')
    const v1 = thrown(() => open(raw({ password: 'p4ssw0rd!' })))
    expect(v1.issues?.[0]?.rule).toBe('version')
    expect(v1.message).toMatch(/the server must seal v2/)
    expect(v1.message).not.toContain('p4ssw0rd!')
    expect(thrown(() => open(raw(['p4ssw0rd!']))).issues?.[0]?.rule).toBe('version')
    expect(thrown(() => open(raw({ v: 3, binding: {}, credentials: {} }))).issues?.[0]?.rule).toBe(
      'version',
    )
    const good = JSON.parse(
      new TextDecoder().decode(
        sealedPlaintext(credentialBinding(scope, bindingInput), { password: 'p4ssw0rd!' }),
      ),
    )
    const extra = thrown(() => open(raw({ ...good, binding: { ...good.binding, extra: 1 } })))
    expect(extra.issues?.[0]?.rule).toBe('binding')
    expect(extra.message).not.toContain('p4ssw0rd!')
    expect(
      thrown(() => open(raw({ ...good, binding: { ...good.binding, nonce: 'short' } }))).issues?.[0]
        ?.rule,
    ).toBe('binding')
    expect(open(raw(good)).credentials).toEqual({ password: 'p4ssw0rd!' })
  })

  it('a runtime seed gives the same key; a bad seed is refused without quoting it', () => {
    const seed = new TextDecoder().decode(runtime.getSeed())
    expect(runtimeKeyPair(seed).getPublicKey()).toBe(runtime.getPublicKey())
    const error = thrown(() => runtimeKeyPair('SXnot-a-real-seed-value'))
    expect(error.kind).toBe('config')
    expect(error.message).not.toContain('not-a-real-seed-value')
  })

  it('plain credentials need the dev flag; both forms at once are refused', () => {
    expect(credentialIssues({ params: {}, credentials: { a: 'x' } }, policy, '/c')).toEqual([
      expect.objectContaining({ path: '/c/credentials', rule: 'sealed' }),
    ])
    expect(
      credentialIssues(
        { params: {}, credentials: { a: 'x' } },
        { ...policy, allowPlainCredentials: true },
        '/c',
      ),
    ).toEqual([])
    expect(
      credentialIssues({ params: {}, credentials: {}, sealedCredentials: 'AAAA' }, policy, '/c'),
    ).toEqual([expect.objectContaining({ path: '/c/credentials', rule: 'oneOf' })])
    expect(
      credentialIssues(
        { params: {}, sealedCredentials: 'AAAA' },
        { ...policy, serverPublicKey: undefined },
        '/c',
      ),
    ).toEqual([expect.objectContaining({ path: '/c/sealedCredentials', rule: 'serverPublicKey' })])
    const sealed = seal({ token: 't' })
    const input = connectionInput(
      { params: { host: 'h' }, sealedCredentials: sealed },
      open(sealed),
    )
    expect(input).toEqual({ credentials: { token: 't' }, params: { host: 'h' } })
    expect(connectionInput({ params: {} }, undefined)).toEqual({ credentials: {}, params: {} })
  })
})

describe('secret-safe logging', () => {
  it('redacts secret-named fields at any depth, keeps the rest', () => {
    const value = {
      runId: 'r',
      connection: {
        params: { host: 'h' },
        credentials: { password: 'x' },
        sealedCredentials: 'AAAA',
      },
      nested: [{ token: 't', ok: 1 }],
    }
    expect(redactSecretFields(value)).toEqual({
      runId: 'r',
      connection: {
        params: { host: 'h' },
        credentials: '[REDACTED]',
        sealedCredentials: '[REDACTED]',
      },
      nested: [{ token: '[REDACTED]', ok: 1 }],
    })
    const lines: unknown[] = []
    const sink = {
      debug: () => {},
      info: (f: unknown) => lines.push(f),
      warn: () => {},
      error: () => {},
    }
    const logger = secretSafeLogger(sink as any)
    logger.info({ runtimeSeed: 'SXABC', password: 'pw' }, 'm')
    expect(lines).toEqual([{ runtimeSeed: '[REDACTED]', password: '[REDACTED]' }])
  })
})
