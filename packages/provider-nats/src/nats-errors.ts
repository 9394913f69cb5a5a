import {
  type ErrorKind,
  errorMessage,
  isTransientNetworkError,
  ProviderError,
} from '@nvisy/provider-core'

/** JetStream API error codes (`err_code`) this provider treats specially. */
export const JS_ERR = {
  streamNotFound: 10059,
  consumerNotFound: 10014,
  jetStreamNotEnabledForAccount: 10039,
  jetStreamNotEnabled: 10076,
  streamMismatch: 10060,
  messageSizeExceeds: 10054,
  wrongLastSequence: 10071,
} as const

interface NatsLikeError {
  name?: unknown
  message?: unknown
  code?: unknown
  status?: unknown
  cause?: unknown
}

function nameOf(error: unknown): string {
  const name = (error as NatsLikeError | null)?.name
  return typeof name === 'string' ? name : ''
}

/** Error classes are recognised by name, so two copies of the client still classify alike. */
function findInChain(error: unknown, names: readonly string[]): NatsLikeError | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    if (names.includes(nameOf(current))) return current as NatsLikeError
    current = (current as NatsLikeError).cause
  }
  return undefined
}

function make(kind: ErrorKind, message: string, cause: unknown, code?: string): ProviderError {
  return new ProviderError({ kind, message, cause, code })
}

/** True when the error is the server's "no responders" status (503) to a request. */
export function isNoResponders(error: unknown): boolean {
  if (findInChain(error, ['NoResponders'])) return true
  return (
    nameOf(error) === 'JetStreamNotEnabled' &&
    findInChain((error as NatsLikeError).cause, ['NoResponders']) !== undefined
  )
}

/** True when publishing failed because the payload is larger than the server's max_payload. */
export function isMaxPayloadExceeded(error: unknown): boolean {
  return nameOf(error) === 'InvalidArgumentError' && /max_payload/i.test(errorMessage(error))
}

/** Map an error from @nats-io/transport-node or @nats-io/jetstream to a ProviderError kind. */
export function classifyNatsError(error: unknown): ProviderError | undefined {
  if (error === null || typeof error !== 'object') return undefined
  const message = errorMessage(error)
  const name = nameOf(error)

  if (findInChain(error, ['AuthorizationError', 'UserAuthenticationExpiredError'])) {
    return make(
      'auth',
      `NATS refused the credentials: ${message}`,
      error,
      'AUTHORIZATION_VIOLATION',
    )
  }
  if (findInChain(error, ['PermissionViolationError'])) {
    return make('auth', `NATS permission denied: ${message}`, error, 'PERMISSION_VIOLATION')
  }

  const api = findInChain(error, [
    'JetStreamApiError',
    'StreamNotFoundError',
    'ConsumerNotFoundError',
  ])
  if (api) {
    const code = typeof api.code === 'number' ? api.code : undefined
    const status = typeof api.status === 'number' ? api.status : undefined
    const text = `JetStream API error ${status ?? '?'}/${code ?? '?'}: ${errorMessage(api)}`
    const codeText = code === undefined ? undefined : `JS_${code}`
    if (code === JS_ERR.streamNotFound)
      return make('not_found', `JetStream stream not found (${errorMessage(api)})`, error, codeText)
    if (code === JS_ERR.consumerNotFound) return make('transient', text, error, codeText)
    if (code === JS_ERR.jetStreamNotEnabled || code === JS_ERR.jetStreamNotEnabledForAccount) {
      return make(
        'config',
        `JetStream is not enabled for this account or server (${errorMessage(api)})`,
        error,
        codeText,
      )
    }
    if (code === JS_ERR.messageSizeExceeds) return make('data', text, error, codeText)
    if (status === 404) return make('not_found', text, error, codeText)
    if (status === 429) return make('rate_limited', text, error, codeText)
    if (status === 408 || status === 503 || (status !== undefined && status >= 500))
      return make('transient', text, error, codeText)
    return make('config', text, error, codeText)
  }

  if (name === 'JetStreamNotEnabled') {
    return make(
      'config',
      `JetStream is not enabled or no stream answers (${message})`,
      error,
      'NO_RESPONDERS',
    )
  }
  if (isNoResponders(error)) {
    return make(
      'config',
      `no responders: nothing answers on the subject (${message})`,
      error,
      'NO_RESPONDERS',
    )
  }
  if (isMaxPayloadExceeded(error))
    return make(
      'data',
      `message larger than the server's max_payload (${message})`,
      error,
      'MAX_PAYLOAD',
    )

  if (
    findInChain(error, [
      'TimeoutError',
      'ConnectionError',
      'ClosedConnectionError',
      'DrainingConnectionError',
      'HeartbeatsMissed',
    ]) ||
    isTransientNetworkError(error) ||
    isTransientNetworkError((error as NatsLikeError).cause)
  ) {
    return make('transient', `NATS connection problem: ${message}`, error, 'CONNECTION')
  }
  if (name === 'JetStreamStatusError') {
    const status = (error as NatsLikeError).code
    if (status === 408 || status === 503)
      return make('transient', `JetStream status ${String(status)}: ${message}`, error)
    if (status === 404) return make('not_found', `JetStream status 404: ${message}`, error)
  }
  if (
    name === 'InvalidArgumentError' ||
    name === 'InvalidSubjectError' ||
    name === 'InvalidNameError'
  ) {
    return make('config', message, error, 'INVALID_ARGUMENT')
  }
  if (name === 'ProtocolError' && /authorization|authentication/i.test(message)) {
    return make(
      'auth',
      `NATS refused the credentials: ${message}`,
      error,
      'AUTHORIZATION_VIOLATION',
    )
  }
  return undefined
}
