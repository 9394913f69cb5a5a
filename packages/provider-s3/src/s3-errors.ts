import { isTransientNetworkError, ProviderError } from '@nvisy/provider-core'

interface S3ServiceErrorLike {
  name?: string
  message?: string
  Code?: string
  code?: string
  $metadata?: { httpStatusCode?: number }
  $response?: { headers?: Record<string, string | undefined> }
  $retryable?: { throttling?: boolean }
}

const AUTH_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
  'InvalidClientTokenId',
  'Forbidden',
  'AllAccessDisabled',
])
const NOT_FOUND_CODES = new Set(['NoSuchBucket', 'NoSuchKey', 'NotFound', 'NoSuchUpload'])
const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestLimitExceeded',
])
const TRANSIENT_CODES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'NetworkingError',
])
const DATA_CODES = new Set([
  'PreconditionFailed',
  'InvalidObjectName',
  'KeyTooLongError',
  'EntityTooLarge',
  'EntityTooSmall',
  'MetadataTooLarge',
  'InvalidArgument',
  'InvalidDigest',
  'BadDigest',
  'InvalidPart',
  'ConditionalRequestConflict',
])

function retryAfterMs(error: S3ServiceErrorLike): number {
  const header = error.$response?.headers?.['retry-after']
  if (header) {
    const seconds = Number(header)
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
    const date = Date.parse(header)
    if (Number.isFinite(date)) return Math.max(0, date - Date.now())
  }
  return 1000
}

/** Map an AWS SDK (or socket) error to a ProviderError kind. The SDK's messages carry no secret. */
export function classifyS3Error(raw: unknown): ProviderError | undefined {
  if (ProviderError.isInstance(raw)) return raw
  const error = (raw ?? {}) as S3ServiceErrorLike
  const code = error.Code ?? error.name ?? error.code
  const status = error.$metadata?.httpStatusCode
  const message =
    error.message && error.message !== 'UnknownError'
      ? error.message
      : `${code ?? 'S3 error'} (HTTP ${status ?? '?'})`
  const make = (
    kind: ProviderError['kind'],
    extra: { retryAfterMs?: number; text?: string } = {},
  ) =>
    new ProviderError({
      kind,
      message: extra.text ?? message,
      code,
      retryAfterMs: extra.retryAfterMs,
      cause: raw,
    })

  if (code && THROTTLE_CODES.has(code))
    return make('rate_limited', { retryAfterMs: retryAfterMs(error) })
  if (status === 429 || status === 503 || error.$retryable?.throttling)
    return make('rate_limited', { retryAfterMs: retryAfterMs(error) })
  if (code === 'NoSuchBucket' || (status === 404 && !code))
    return make('not_found', { text: `bucket not found: ${message}` })
  if (code && NOT_FOUND_CODES.has(code)) return make('not_found')
  if (code && AUTH_CODES.has(code)) return make('auth')
  if (status === 401 || status === 403)
    return make('auth', { text: `access denied (HTTP ${status}): ${message}` })
  if (code && DATA_CODES.has(code)) return make('data')
  if (status === 412)
    return make('data', { text: 'the object already exists (precondition failed)' })
  if (code && TRANSIENT_CODES.has(code)) return make('transient')
  if (isTransientNetworkError(raw)) return make('transient')
  if (status !== undefined && status >= 500) return make('transient')
  if (status === 400) return make('data')
  return undefined
}
