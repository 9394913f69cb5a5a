import { type ErrorKind, isTransientNetworkError, ProviderError } from '@nvisy/provider-core'

const MAX_REASON = 500
const DEFAULT_RATE_LIMIT_WAIT_MS = 1000

/** Error types of a 400 that mean the request (query, mapping, index name) is wrong: `config`. */
const CONFIG_TYPES = new Set([
  'parsing_exception',
  'x_content_parse_exception',
  'illegal_argument_exception',
  'search_phase_execution_exception',
  'query_shard_exception',
  'mapper_parsing_exception',
  'invalid_index_name_exception',
  'resource_already_exists_exception',
  'action_request_validation_exception',
  'strict_dynamic_mapping_exception',
])

/** Per-item (and request) error types that belong to the document itself: `data`. */
export const DOCUMENT_ERROR_TYPES = new Set([
  'document_parsing_exception',
  'mapper_parsing_exception',
  'strict_dynamic_mapping_exception',
  'illegal_argument_exception',
  'version_conflict_engine_exception',
  'document_missing_exception',
  'action_request_validation_exception',
  'invalid_index_name_exception',
  'index_closed_exception',
])

export function parseRetryAfter(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined
  const text = Array.isArray(value) ? String(value[0]) : String(value)
  const seconds = Number(text)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000)
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

interface ErrorBody {
  type?: string
  reason?: string
  root_cause?: { type?: string; reason?: string }[]
  caused_by?: { type?: string; reason?: string }
}

/** The server's error type and reason, from `{error:{type,reason,root_cause,caused_by}}` or a text body. */
export function errorDetail(body: unknown): { type: string | undefined; reason: string } {
  if (typeof body === 'string') return { type: undefined, reason: body.trim().slice(0, MAX_REASON) }
  const error = (body as { error?: unknown } | null)?.error
  if (typeof error === 'string') return { type: undefined, reason: error.slice(0, MAX_REASON) }
  const e = (error ?? {}) as ErrorBody
  const root = e.root_cause?.[0]
  const cause = e.caused_by
  let reason = e.reason ?? ''
  // "all shards failed" says nothing: the root cause says why.
  if (root?.reason && root.reason !== reason)
    reason = `${reason}${reason ? ': ' : ''}${root.reason}`
  else if (cause?.reason && cause.reason !== reason)
    reason = `${reason}${reason ? ': ' : ''}${cause.reason}`
  return { type: root?.type ?? e.type, reason: reason.slice(0, MAX_REASON) }
}

/** The kind of an HTTP status and error type from the server. */
export function kindOf(status: number, type: string | undefined): ErrorKind {
  if (status === 401 || status === 403) return 'auth'
  if (status === 429) return 'rate_limited'
  if (status === 404) return 'not_found'
  if (status === 409) return 'data'
  if (status === 413) return 'data'
  if (status >= 500) return 'transient'
  if (type && DOCUMENT_ERROR_TYPES.has(type) && type !== 'illegal_argument_exception') return 'data'
  if (status === 400 && (type === undefined || CONFIG_TYPES.has(type))) return 'config'
  return status >= 400 && status < 500 ? 'config' : 'internal'
}

interface ClientError {
  name?: string
  message?: string
  statusCode?: number
  body?: unknown
  headers?: Record<string, unknown>
  meta?: { statusCode?: number; body?: unknown; headers?: Record<string, unknown> }
  code?: unknown
}

/**
 * Map an error of the OpenSearch client to a ProviderError. The message is built from
 * the status and the server's error type and reason only: never the request, its headers
 * or the node URL, so no credential can reach it. The client error is not kept as cause
 * (its metadata holds the request).
 */
export function classifyOpenSearchError(raw: unknown): ProviderError | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const error = raw as ClientError
  const name = typeof error.name === 'string' ? error.name : ''
  if (name === 'ResponseError') {
    const status = error.meta?.statusCode ?? error.statusCode ?? 0
    // The security plugin answers 401 with a bare "Unauthorized" text body.
    const body = error.meta?.body ?? error.body
    const { type, reason } = errorDetail(body)
    const kind = kindOf(status, type)
    const message = `OpenSearch answered ${status}${type ? ` ${type}` : ''}${reason ? `: ${reason}` : ''}`
    return new ProviderError({
      kind,
      message,
      code: type ?? String(status),
      ...(kind === 'rate_limited'
        ? {
            retryAfterMs:
              parseRetryAfter((error.meta?.headers ?? error.headers)?.['retry-after']) ??
              DEFAULT_RATE_LIMIT_WAIT_MS,
          }
        : {}),
    })
  }
  let kind: ErrorKind | undefined
  let message: string
  switch (name) {
    case 'ConnectionError':
    case 'TimeoutError':
    case 'NoLivingConnectionsError':
      kind = 'transient'
      message = `OpenSearch could not be reached (${name}): ${safeText(error.message)}`
      break
    case 'ConfigurationError':
      kind = 'config'
      message = `OpenSearch client configuration: ${safeText(error.message)}`
      break
    case 'DeserializationError':
    case 'SerializationError':
      kind = 'data'
      message = `OpenSearch: ${name}: ${safeText(error.message)}`
      break
    case 'RequestAbortedError':
      kind = 'transient'
      message = 'OpenSearch request aborted'
      break
    default:
      if (isTransientNetworkError(error)) {
        kind = 'transient'
        message = `OpenSearch could not be reached: ${safeText(error.message)}`
      } else return undefined
  }
  return new ProviderError({ kind, message, code: name })
}

/** A client message with any URL (it could carry user info) cut to its host. */
function safeText(text: unknown): string {
  return String(text ?? '')
    .replace(/(https?:\/\/)[^\s/@]*@/g, '$1')
    .slice(0, MAX_REASON)
}
