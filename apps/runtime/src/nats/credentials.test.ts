import { createCurve } from '@nats-io/nkeys'
import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  credentialIssues,
  isCurvePublicKey,
  openSealedCredentials,
  resolveConnectionInput,
  runtimeKeyPair,
  sealCredentials,
} from './credentials.js'
import { redactSecretFields, secretSafeLogger } from './logging.js'

const server = createCurve()
const runtime = createCurve()
const policy = { serverPublicKey: server.getPublicKey(), allowPlainCredentials: false }

function thrown(fn: () => unknown): ProviderError {
  try {
    fn()
  } catch (error) {
    if (ProviderError.isInstance(error)) return error
    throw error
  }
  throw new Error('expected a ProviderError')
}

describe('sealed credentials', () => {
  it('open what the configured server sealed to this runtime', () => {
    const sealed = sealCredentials(server, runtime.getPublicKey(), { password: 'p4ssw0rd!' })
    expect(openSealedCredentials(runtime, server.getPublicKey(), sealed, 'node a')).toEqual({
      password: 'p4ssw0rd!',
    })
    expect(isCurvePublicKey(runtime.getPublicKey())).toBe(true)
  })

  it('refuse another sender, another recipient, tampering and non-objects, never quoting them', () => {
    const other = createCurve()
    const cases = [
      sealCredentials(other, runtime.getPublicKey(), { password: 'p4ssw0rd!' }),
      sealCredentials(server, other.getPublicKey(), { password: 'p4ssw0rd!' }),
    ]
    for (const sealed of cases) {
      const error = thrown(() =>
        openSealedCredentials(runtime, server.getPublicKey(), sealed, 'node a'),
      )
      expect(error.kind).toBe('auth')
      expect(error.message).toMatch(/^node a: sealed credentials could not be opened/)
      expect(error.message).not.toContain(sealed)
    }
    const bytes = Buffer.from(sealCredentials(server, runtime.getPublicKey(), { a: 1 }), 'base64')
    bytes[bytes.length - 1]! ^= 1
    expect(
      thrown(() =>
        openSealedCredentials(runtime, server.getPublicKey(), bytes.toString('base64'), 'n'),
      ).kind,
    ).toBe('auth')
    const list = sealCredentials(server, runtime.getPublicKey(), ['p4ssw0rd!'])
    const error = thrown(() => openSealedCredentials(runtime, server.getPublicKey(), list, 'n'))
    expect(error.kind).toBe('config')
    expect(error.message).not.toContain('p4ssw0rd')
    expect(thrown(() => openSealedCredentials(runtime, undefined, list, 'n')).message).toMatch(
      /no server public key/,
    )
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
    const input = resolveConnectionInput(
      {
        params: { host: 'h' },
        sealedCredentials: sealCredentials(server, runtime.getPublicKey(), { token: 't' }),
      },
      runtime,
      policy,
      'node a',
    )
    expect(input).toEqual({ credentials: { token: 't' }, params: { host: 'h' } })
    expect(resolveConnectionInput({ params: {} }, runtime, policy, 'n')).toEqual({
      credentials: {},
      params: {},
    })
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
