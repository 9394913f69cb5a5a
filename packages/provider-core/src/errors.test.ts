import { describe, expect, it } from 'vitest'
import {
  ERROR_KINDS,
  errorMessage,
  isAbortError,
  isProviderError,
  isRetryableKind,
  isTransientNetworkError,
  ProviderError,
  toProviderError,
} from './errors.js'

describe('ProviderError', () => {
  it('carries every field it was given', () => {
    const cause = new Error('driver said no')
    const error = new ProviderError({
      kind: 'rate_limited',
      message: 'slow down',
      providerId: 'acme',
      operation: 'read',
      stream: 'users',
      cursor: { id: 7 },
      retryAfterMs: 1500,
      code: '429',
      issues: [{ path: '/params/host', rule: 'required', message: 'is required' }],
      cause,
    })
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('ProviderError')
    expect(error.message).toBe('slow down')
    expect(error.kind).toBe('rate_limited')
    expect(error.providerId).toBe('acme')
    expect(error.operation).toBe('read')
    expect(error.stream).toBe('users')
    expect(error.cursor).toEqual({ id: 7 })
    expect(error.retryAfterMs).toBe(1500)
    expect(error.code).toBe('429')
    expect(error.issues).toEqual([
      { path: '/params/host', rule: 'required', message: 'is required' },
    ])
    expect(error.cause).toBe(cause)
    expect(error.stack).toContain('slow down')
  })

  it('has no cause property when none is given', () => {
    const error = new ProviderError({ kind: 'internal', message: 'x' })
    expect('cause' in error).toBe(false)
  })

  it('is retryable only for transient and rate_limited', () => {
    const retryable = ERROR_KINDS.filter(
      (kind) => new ProviderError({ kind, message: kind }).retryable,
    )
    expect(retryable.sort()).toEqual(['rate_limited', 'transient'])
    expect(ERROR_KINDS.filter(isRetryableKind).sort()).toEqual(['rate_limited', 'transient'])
  })

  describe('isInstance', () => {
    it('recognises its own instances and rejects everything else', () => {
      expect(ProviderError.isInstance(new ProviderError({ kind: 'auth', message: 'no' }))).toBe(
        true,
      )
      expect(isProviderError(new ProviderError({ kind: 'auth', message: 'no' }))).toBe(true)
      for (const value of [
        new Error('x'),
        { kind: 'auth', message: 'no' },
        null,
        undefined,
        'ProviderError',
        42,
      ]) {
        expect(ProviderError.isInstance(value)).toBe(false)
      }
    })

    it('recognises an error from a second copy of the package', async () => {
      // A query string makes Vite load the module again: a separate class, like a
      // duplicate copy of @nvisy/provider-core in node_modules.
      const specifier: string = './errors.js?copy'
      const copy = (await import(/* @vite-ignore */ specifier)) as typeof import('./errors.js')
      expect(copy.ProviderError).not.toBe(ProviderError)
      const foreign = new copy.ProviderError({ kind: 'transient', message: 'from the other copy' })
      expect(foreign instanceof ProviderError).toBe(false)
      expect(ProviderError.isInstance(foreign)).toBe(true)
      expect(copy.ProviderError.isInstance(new ProviderError({ kind: 'auth', message: 'x' }))).toBe(
        true,
      )
      // toProviderError keeps a foreign ProviderError's kind instead of wrapping it as internal.
      const wrapped = toProviderError(foreign, { providerId: 'acme' })
      expect(wrapped.kind).toBe('transient')
      expect(wrapped.providerId).toBe('acme')
    })

    it('recognises any object carrying the shared Symbol.for marker', () => {
      const marker = Symbol.for('nvisy.provider-core.ProviderError')
      const lookalike = Object.assign(new Error('x'), { [marker]: true, kind: 'auth' })
      expect(ProviderError.isInstance(lookalike)).toBe(true)
      expect(ProviderError.isInstance({ [marker]: 'yes' })).toBe(false)
    })
  })

  describe('withContext', () => {
    it('fills empty fields and keeps the ones already set', () => {
      const original = new ProviderError({
        kind: 'data',
        message: 'bad row',
        stream: 'orders',
        code: '22P02',
      })
      const copy = original.withContext({
        providerId: 'pg',
        operation: 'write',
        stream: 'other',
        cursor: { id: 3 },
      })
      expect(copy).not.toBe(original)
      expect(copy.kind).toBe('data')
      expect(copy.message).toBe('bad row')
      expect(copy.providerId).toBe('pg')
      expect(copy.operation).toBe('write')
      expect(copy.stream).toBe('orders')
      expect(copy.cursor).toEqual({ id: 3 })
      expect(copy.code).toBe('22P02')
      expect(copy.stack).toBe(original.stack)
      // The original is untouched.
      expect(original.providerId).toBeUndefined()
    })

    it('keeps the cause, issues and retryAfterMs', () => {
      const cause = new Error('root')
      const issues = [{ path: '/x', rule: 'type', message: 'must be string' }]
      const original = new ProviderError({
        kind: 'rate_limited',
        message: 'm',
        retryAfterMs: 10,
        issues,
        cause,
      })
      const copy = original.withContext({ providerId: 'p' })
      expect(copy.cause).toBe(cause)
      expect(copy.issues).toEqual(issues)
      expect(copy.retryAfterMs).toBe(10)
    })
  })

  describe('toJSON', () => {
    it('is a plain object with the set fields only, without the cause', () => {
      const error = new ProviderError({
        kind: 'not_found',
        message: 'no table',
        providerId: 'pg',
        operation: 'read',
        stream: 'missing',
        cursor: { id: 1 },
        code: '42P01',
        cause: new Error('relation "missing" does not exist'),
      })
      const json = JSON.parse(JSON.stringify(error))
      expect(json).toEqual({
        kind: 'not_found',
        message: 'no table',
        providerId: 'pg',
        operation: 'read',
        stream: 'missing',
        cursor: { id: 1 },
        code: '42P01',
      })
      expect(new ProviderError({ kind: 'internal', message: 'x' }).toJSON()).toEqual({
        kind: 'internal',
        message: 'x',
      })
    })

    it('includes retryAfterMs and issues', () => {
      const issues = [{ path: '/a', rule: 'required', message: 'is required' }]
      expect(
        new ProviderError({ kind: 'config', message: 'x', issues, retryAfterMs: 5 }).toJSON(),
      ).toEqual({
        kind: 'config',
        message: 'x',
        issues,
        retryAfterMs: 5,
      })
    })
  })
})

describe('toProviderError', () => {
  it('keeps the kind of a ProviderError and adds missing context', () => {
    const original = new ProviderError({
      kind: 'auth',
      message: 'bad password',
      operation: 'check',
    })
    const error = toProviderError(original, { providerId: 'pg', operation: 'connect', stream: 's' })
    expect(error.kind).toBe('auth')
    expect(error.operation).toBe('check')
    expect(error.providerId).toBe('pg')
    expect(error.stream).toBe('s')
  })

  it('classifies socket errors as transient and keeps their code and cause', () => {
    const raw = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    })
    const error = toProviderError(raw, { providerId: 'pg', operation: 'connect' })
    expect(error.kind).toBe('transient')
    expect(error.code).toBe('ECONNREFUSED')
    expect(error.cause).toBe(raw)
    expect(error.message).toBe('connect ECONNREFUSED 127.0.0.1:1')
    expect(error.providerId).toBe('pg')
    expect(error.operation).toBe('connect')
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']) {
      expect(toProviderError(Object.assign(new Error(code), { code })).kind).toBe('transient')
    }
  })

  it('uses the classifier, then adds context', () => {
    const raw = Object.assign(new Error('password authentication failed'), { code: '28P01' })
    const seen: unknown[] = []
    const error = toProviderError(raw, {
      providerId: 'pg',
      operation: 'check',
      cursor: { id: 2 },
      classify: (e) => {
        seen.push(e)
        return new ProviderError({
          kind: 'auth',
          message: 'authentication failed',
          code: '28P01',
          cause: e,
        })
      },
    })
    expect(seen).toEqual([raw])
    expect(error.kind).toBe('auth')
    expect(error.providerId).toBe('pg')
    expect(error.operation).toBe('check')
    expect(error.cursor).toEqual({ id: 2 })
    expect(error.cause).toBe(raw)
  })

  it('keeps the raw error as the cause when the classifier gives none', () => {
    const raw = new Error('quota exceeded')
    const error = toProviderError(raw, {
      classify: () => new ProviderError({ kind: 'rate_limited', message: 'quota' }),
    })
    expect(error.kind).toBe('rate_limited')
    expect(error.cause).toBe(raw)
  })

  it('falls back to the default when the classifier returns undefined', () => {
    expect(toProviderError(new Error('boom'), { classify: () => undefined }).kind).toBe('internal')
    const socket = Object.assign(new Error('reset'), { code: 'ECONNRESET' })
    expect(toProviderError(socket, { classify: () => undefined }).kind).toBe('transient')
  })

  it('defaults to internal and copies a string code only', () => {
    const error = toProviderError(new Error('boom'))
    expect(error.kind).toBe('internal')
    expect(error.code).toBeUndefined()
    expect(toProviderError(Object.assign(new Error('x'), { code: 1045 })).code).toBeUndefined()
    expect(toProviderError(Object.assign(new Error('x'), { code: 'ER_X' })).code).toBe('ER_X')
  })

  it('turns thrown non-errors into a readable message', () => {
    expect(toProviderError('plain text').message).toBe('plain text')
    expect(toProviderError({ reason: 'x' }).message).toBe('{"reason":"x"}')
    expect(toProviderError(undefined).message).toBe('undefined')
    expect(toProviderError(null).kind).toBe('internal')
  })
})

describe('helpers', () => {
  it('isTransientNetworkError reads the code', () => {
    expect(isTransientNetworkError({ code: 'ECONNREFUSED' })).toBe(true)
    expect(isTransientNetworkError({ code: 'ENOENT' })).toBe(false)
    expect(isTransientNetworkError(null)).toBe(false)
    expect(isTransientNetworkError(undefined)).toBe(false)
  })

  it('isAbortError reads the name', () => {
    const controller = new AbortController()
    controller.abort()
    expect(isAbortError(controller.signal.reason)).toBe(true)
    expect(isAbortError(new Error('x'))).toBe(false)
    expect(isAbortError(null)).toBe(false)
  })

  it('errorMessage handles errors, strings, objects and cycles', () => {
    expect(errorMessage(new Error('m'))).toBe('m')
    expect(errorMessage('s')).toBe('s')
    expect(errorMessage({ a: 1 })).toBe('{"a":1}')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(errorMessage(cyclic)).toBe('[object Object]')
    expect(errorMessage(undefined)).toBe('undefined')
    expect(errorMessage(10n)).toBe('10')
  })
})
