import { isTransientNetworkError, ProviderError } from '@nvisy/provider-core'

interface GcsErrorLike {
  message?: string
  code?: number | string
  status?: number
  response?: {
    status?: number
    headers?: Record<string, string> | { get?(name: string): string | null }
  }
}

/** The HTTP status of an ApiError (`code`) or a GaxiosError (`status`, `response.status`). */
export function gcsStatus(raw: unknown): number | undefined {
  const error = (raw ?? {}) as GcsErrorLike
  if (typeof error.code === 'number') return error.code
  if (typeof error.status === 'number') return error.status
  if (typeof error.response?.status === 'number') return error.response.status
  return undefined
}

function retryAfterMs(raw: unknown): number {
  const headers = (raw as GcsErrorLike).response?.headers as any
  const header =
    typeof headers?.get === 'function' ? headers.get('retry-after') : headers?.['retry-after']
  const seconds = Number(header)
  return Number.isFinite(seconds) && header ? seconds * 1000 : 1000
}

const AUTH_MESSAGE =
  /DECODER routines|PEM|private key|invalid_grant|invalid_client|Could not load the default credentials|Unexpected token .* in JSON|client_email/i

/** Map a @google-cloud/storage error to a ProviderError kind. */
export function classifyGcsError(raw: unknown): ProviderError | undefined {
  if (ProviderError.isInstance(raw)) return raw
  const status = gcsStatus(raw)
  const message = (raw as GcsErrorLike | undefined)?.message ?? 'GCS error'
  const code =
    status !== undefined
      ? String(status)
      : typeof (raw as GcsErrorLike)?.code === 'string'
        ? String((raw as GcsErrorLike).code)
        : undefined
  const make = (
    kind: ProviderError['kind'],
    extra: { retryAfterMs?: number; text?: string; withoutCause?: boolean } = {},
  ) =>
    new ProviderError({
      kind,
      message: extra.text ?? message,
      code,
      retryAfterMs: extra.retryAfterMs,
      cause: extra.withoutCause ? undefined : raw,
    })
  if (status === 429) return make('rate_limited', { retryAfterMs: retryAfterMs(raw) })
  if (status === 401 || status === 403) return make('auth')
  if (status === 404) return make('not_found')
  if (status === 412)
    return make('data', { text: 'precondition failed: the object already exists or changed' })
  if (status === 400 || status === 413) return make('data')
  if (status !== undefined && status >= 500) return make('transient')
  if (isTransientNetworkError(raw)) return make('transient')
  // Key parsing and signing errors can quote part of the key: keep neither message nor cause.
  if (AUTH_MESSAGE.test(message)) {
    return make('auth', {
      text: 'the service account credentials could not be used (malformed key file or private key)',
      withoutCause: true,
    })
  }
  return undefined
}
