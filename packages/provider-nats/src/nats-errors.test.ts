import { JetStreamApiError, jserrors } from '@nats-io/jetstream/internal'
import { errors } from '@nats-io/nats-core'
import { describe, expect, it } from 'vitest'
import { classifyNatsError, isMaxPayloadExceeded, isNoResponders } from './nats-errors.js'

const apiError = (code: number, err_code: number, description = 'x') =>
  new JetStreamApiError({ code, err_code, description })

describe('classifyNatsError', () => {
  it('maps authorization failures to auth', () => {
    expect(
      classifyNatsError(new errors.AuthorizationError("'Authorization Violation'"))?.kind,
    ).toBe('auth')
    expect(classifyNatsError(new errors.UserAuthenticationExpiredError('expired'))?.kind).toBe(
      'auth',
    )
    expect(
      classifyNatsError(new errors.PermissionViolationError('denied', 'publish', 'a.b'))?.kind,
    ).toBe('auth')
    // Wrapped in a connection error, as the client reports a failed first connect.
    const wrapped = new errors.ConnectionError('failed', {
      cause: new errors.AuthorizationError('Authorization Violation'),
    })
    expect(classifyNatsError(wrapped)?.kind).toBe('auth')
  })

  it('maps JetStream API errors by their codes', () => {
    expect(
      classifyNatsError(
        new jserrors.StreamNotFoundError({
          code: 404,
          err_code: 10059,
          description: 'stream not found',
        }),
      )?.kind,
    ).toBe('not_found')
    expect(classifyNatsError(apiError(503, 10039))?.kind).toBe('config')
    expect(
      classifyNatsError(apiError(400, 10054, 'message size exceeds maximum allowed'))?.kind,
    ).toBe('data')
    expect(classifyNatsError(apiError(400, 10060, 'expected stream does not match'))).toMatchObject(
      { kind: 'config', code: 'JS_10060' },
    )
    expect(classifyNatsError(apiError(503, 10008))?.kind).toBe('transient')
    expect(classifyNatsError(apiError(500, 10999))?.kind).toBe('transient')
    expect(classifyNatsError(apiError(429, 10999))?.kind).toBe('rate_limited')
    expect(classifyNatsError(apiError(404, 10999))?.kind).toBe('not_found')
  })

  it('maps connection problems to transient', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    })
    expect(
      classifyNatsError(new errors.ConnectionError('connection refused', { cause: refused }))?.kind,
    ).toBe('transient')
    expect(classifyNatsError(new errors.TimeoutError())?.kind).toBe('transient')
    expect(classifyNatsError(new errors.ClosedConnectionError())?.kind).toBe('transient')
    expect(
      classifyNatsError(new errors.RequestError('timeout', { cause: new errors.TimeoutError() }))
        ?.kind,
    ).toBe('transient')
  })

  it('recognises no responders and max payload', () => {
    const noResponders = new errors.RequestError('no responders', {
      cause: new errors.NoRespondersError('a.b'),
    })
    expect(isNoResponders(noResponders)).toBe(true)
    expect(classifyNatsError(noResponders)).toMatchObject({ kind: 'config', code: 'NO_RESPONDERS' })
    const tooLarge = errors.InvalidArgumentError.format('payload', 'max_payload size exceeded')
    expect(isMaxPayloadExceeded(tooLarge)).toBe(true)
    expect(classifyNatsError(tooLarge)).toMatchObject({ kind: 'data', code: 'MAX_PAYLOAD' })
    expect(
      isMaxPayloadExceeded(errors.InvalidArgumentError.format('subject', 'is not valid')),
    ).toBe(false)
  })

  it('leaves unknown errors to the core fallback', () => {
    expect(classifyNatsError(new Error('something else'))).toBeUndefined()
    expect(classifyNatsError('text')).toBeUndefined()
  })
})
