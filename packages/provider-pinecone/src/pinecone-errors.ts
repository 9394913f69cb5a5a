import { errorMessage, ProviderError } from '@nvisy/provider-core'

/** A non-2xx answer, thrown by the provider's fetch so the HTTP status and Retry-After survive the SDK. */
export class PineconeHttpError extends Error {
  readonly status: number
  readonly retryAfterMs: number | undefined
  readonly serviceCode: string | undefined

  constructor(status: number, message: string, retryAfterMs?: number, serviceCode?: string) {
    super(message)
    this.name = 'PineconeHttpError'
    this.status = status
    this.retryAfterMs = retryAfterMs
    this.serviceCode = serviceCode
  }
}

const MAX_MESSAGE = 500
const DEFAULT_RATE_LIMIT_WAIT_MS = 1000

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** The service's message from either error body: `{error:{code,message}}` or `{code,message}`. */
function serviceMessage(text: string): { message: string; code: string | undefined } {
  try {
    const body = JSON.parse(text)
    const nested = body?.error
    if (nested && typeof nested.message === 'string') {
      return {
        message: nested.message,
        code: typeof nested.code === 'string' ? nested.code : undefined,
      }
    }
    if (typeof body?.message === 'string') {
      return {
        message: body.message,
        code: body.code === undefined ? undefined : String(body.code),
      }
    }
  } catch {}
  return { message: text.trim(), code: undefined }
}

/** The path of a request URL, without the query string (ids, tokens) or credentials. */
function where(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return 'the Pinecone API'
  }
}

type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * A fetch for the SDK that turns every non-2xx answer into a PineconeHttpError. The SDK
 * would map 403 to a "bad request" and drop the status of a 429 and its Retry-After.
 */
export function statusPreservingFetch(base: FetchLike = globalThis.fetch): FetchLike {
  return async (input, init) => {
    const response = await base(input, init)
    if (response.status >= 200 && response.status < 300) return response
    const text = await response.text().catch(() => '')
    const { message, code } = serviceMessage(text)
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    const shown = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}...` : message
    throw new PineconeHttpError(
      response.status,
      `Pinecone answered ${response.status} for ${init?.method ?? 'GET'} ${where(url)}${shown ? `: ${shown}` : ''}`,
      parseRetryAfter(response.headers.get('retry-after')),
      code,
    )
  }
}

function fromStatus(
  status: number,
  message: string,
  retryAfterMs?: number,
  code?: string,
): ProviderError {
  if (status === 401 || status === 403) return new ProviderError({ kind: 'auth', message, code })
  if (status === 404) return new ProviderError({ kind: 'not_found', message, code })
  if (status === 429) {
    return new ProviderError({
      kind: 'rate_limited',
      message,
      retryAfterMs: retryAfterMs ?? DEFAULT_RATE_LIMIT_WAIT_MS,
      code,
    })
  }
  if (status >= 500 && status !== 501)
    return new ProviderError({ kind: 'transient', message, code })
  if (status === 501) return new ProviderError({ kind: 'internal', message, code })
  // 400, 409, 413, 422: the request itself is refused.
  return new ProviderError({ kind: 'data', message, code })
}

function findHttpError(error: unknown): PineconeHttpError | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 6 && current; depth++) {
    if (current instanceof PineconeHttpError) return current
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** Map an error from the Pinecone SDK (or the provider's fetch) to a ProviderError kind. */
export function classifyPineconeError(error: unknown): ProviderError | undefined {
  const http = findHttpError(error)
  if (http) return fromStatus(http.status, http.message, http.retryAfterMs, http.serviceCode)
  const name = (error as { name?: unknown } | null)?.name
  if (typeof name !== 'string' || !name.startsWith('Pinecone')) return undefined
  const message = `Pinecone: ${errorMessage(error)}`
  switch (name) {
    case 'PineconeAuthorizationError':
      return new ProviderError({ kind: 'auth', message })
    case 'PineconeNotFoundError':
    case 'PineconeUnableToResolveHostError':
      return new ProviderError({ kind: 'not_found', message })
    case 'PineconeBadRequestError':
      // The SDK maps 403 to this class too; the service's body says PERMISSION_DENIED / FORBIDDEN.
      if (/PERMISSION_DENIED|FORBIDDEN|\b403\b/i.test(message))
        return new ProviderError({ kind: 'auth', message })
      return new ProviderError({ kind: 'data', message })
    case 'PineconeConflictError':
    case 'PineconeUnprocessableEntityError':
      return new ProviderError({ kind: 'data', message })
    case 'PineconeInternalServerError':
    case 'PineconeUnavailableError':
    case 'PineconeMaxRetriesExceededError':
    case 'PineconeConnectionError':
    case 'PineconeRequestError':
      return new ProviderError({ kind: 'transient', message })
    case 'PineconeArgumentError':
    case 'PineconeConfigurationError':
    case 'PineconeEnvironmentVarsNotSupportedError':
      return new ProviderError({ kind: 'config', message })
    case 'PineconeUnmappedHttpError': {
      const status = /Status: (\d{3})/.exec(message)
      if (status) return fromStatus(Number(status[1]), message)
      return new ProviderError({ kind: 'internal', message })
    }
    default:
      return new ProviderError({ kind: 'internal', message })
  }
}
