/**
 * One error hierarchy for every provider. The `kind` decides what the runtime does:
 * `transient` and `rate_limited` are retried, the rest are not.
 */
export const ERROR_KINDS = [
  'config',
  'auth',
  'not_found',
  'rate_limited',
  'transient',
  'data',
  'internal',
] as const

export type ErrorKind = (typeof ERROR_KINDS)[number]

export type Operation =
  | 'connect'
  | 'check'
  | 'discover'
  | 'describe'
  | 'prepare'
  | 'read'
  | 'partition'
  | 'write'
  | 'delete'
  | 'close'

/** One failing field of a validated value: a JSON pointer, the rule that failed, a message. */
export interface ValidationIssue {
  path: string
  rule: string
  message: string
}

export interface ProviderErrorOptions {
  kind: ErrorKind
  message: string
  providerId?: string | undefined
  operation?: Operation | string | undefined
  stream?: string | undefined
  /** The resume context at which the failure happened, when there is one. */
  cursor?: unknown
  /** Set for `rate_limited`: how long the service asked us to wait. */
  retryAfterMs?: number | undefined
  /** The driver's own error code (SQLSTATE, S3 error code, ...), never a secret. */
  code?: string | undefined
  issues?: ValidationIssue[] | undefined
  cause?: unknown
}

const MARKER = Symbol.for('nvisy.provider-core.ProviderError')

export class ProviderError extends Error {
  readonly [MARKER] = true
  readonly kind: ErrorKind
  readonly providerId: string | undefined
  readonly operation: string | undefined
  readonly stream: string | undefined
  readonly cursor: unknown
  readonly retryAfterMs: number | undefined
  readonly code: string | undefined
  readonly issues: ValidationIssue[] | undefined

  constructor(options: ProviderErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProviderError'
    this.kind = options.kind
    this.providerId = options.providerId
    this.operation = options.operation
    this.stream = options.stream
    this.cursor = options.cursor
    this.retryAfterMs = options.retryAfterMs
    this.code = options.code
    this.issues = options.issues
  }

  /** True for a ProviderError from any copy of this package. */
  static isInstance(value: unknown): value is ProviderError {
    return typeof value === 'object' && value !== null && (value as any)[MARKER] === true
  }

  get retryable(): boolean {
    return isRetryableKind(this.kind)
  }

  /** A copy with the where-it-happened fields filled in where they were empty. */
  withContext(context: {
    providerId?: string | undefined
    operation?: string | undefined
    stream?: string | undefined
    cursor?: unknown
  }): ProviderError {
    const copy = new ProviderError({
      kind: this.kind,
      message: this.message,
      providerId: this.providerId ?? context.providerId,
      operation: this.operation ?? context.operation,
      stream: this.stream ?? context.stream,
      cursor: this.cursor ?? context.cursor,
      retryAfterMs: this.retryAfterMs,
      code: this.code,
      issues: this.issues,
      cause: this.cause,
    })
    if (this.stack) copy.stack = this.stack
    return copy
  }

  /** A plain JSON form for events, logs and NATS replies. The cause is summarised, not embedded. */
  toJSON(): SerializedProviderError {
    const out: SerializedProviderError = { kind: this.kind, message: this.message }
    if (this.providerId !== undefined) out.providerId = this.providerId
    if (this.operation !== undefined) out.operation = this.operation
    if (this.stream !== undefined) out.stream = this.stream
    if (this.cursor !== undefined) out.cursor = this.cursor
    if (this.retryAfterMs !== undefined) out.retryAfterMs = this.retryAfterMs
    if (this.code !== undefined) out.code = this.code
    if (this.issues !== undefined) out.issues = this.issues
    return out
  }
}

export interface SerializedProviderError {
  kind: ErrorKind
  message: string
  providerId?: string
  operation?: string
  stream?: string
  cursor?: unknown
  retryAfterMs?: number
  code?: string
  issues?: ValidationIssue[]
}

export function isRetryableKind(kind: ErrorKind): boolean {
  return kind === 'transient' || kind === 'rate_limited'
}

export function isProviderError(value: unknown): value is ProviderError {
  return ProviderError.isInstance(value)
}

/** Node's socket-level error codes that mean "try again". */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTCONN',
  'ESOCKETTIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])

export function isTransientNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)
}

export function isAbortError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name
  return name === 'AbortError'
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message
  if (typeof error === 'string') return error
  try {
    // JSON.stringify returns undefined for undefined, functions and symbols.
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/**
 * Wrap anything thrown into a ProviderError. A ProviderError keeps its kind and gains the
 * missing context; an abort stays an abort; a socket error becomes `transient`; the rest
 * uses `classify` or falls back to `internal`.
 */
export function toProviderError(
  error: unknown,
  context: {
    providerId?: string | undefined
    operation?: string | undefined
    stream?: string | undefined
    cursor?: unknown
    classify?: ((error: unknown) => ProviderError | undefined) | undefined
  } = {},
): ProviderError {
  if (ProviderError.isInstance(error)) return error.withContext(context)
  const classified = context.classify?.(error)
  if (classified) {
    const result = classified.withContext(context)
    // Keep the driver's error reachable (for logs after redaction) when the classifier did not.
    if (result.cause === undefined && error !== undefined) {
      Object.defineProperty(result, 'cause', {
        value: error,
        writable: true,
        configurable: true,
        enumerable: false,
      })
    }
    return result
  }
  const kind: ErrorKind = isTransientNetworkError(error) ? 'transient' : 'internal'
  const code = (error as { code?: unknown } | null)?.code
  return new ProviderError({
    kind,
    message: errorMessage(error),
    providerId: context.providerId,
    operation: context.operation,
    stream: context.stream,
    cursor: context.cursor,
    code: typeof code === 'string' ? code : undefined,
    cause: error,
  })
}
