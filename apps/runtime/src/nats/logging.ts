import { type Logger, REDACTED } from '@nvisy/provider-core'

/**
 * Field names whose values never reach a log line, wherever they appear: the credentials of
 * a connection (plain or sealed), the runtime's seed, and the usual secret names.
 */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'credentials',
  'sealedCredentials',
  'runtimeSeed',
  'seed',
  'password',
  'pass',
  'token',
  'secret',
  'secretAccessKey',
  'privateKey',
  'apiKey',
  'authorization',
]

const secretNames = new Set(SECRET_FIELD_NAMES.map((name) => name.toLowerCase()))

/** The same redaction as pino `redact` paths, for a pino logger the runtime creates itself. */
export const PINO_REDACT_PATHS: readonly string[] = SECRET_FIELD_NAMES.flatMap((name) => [
  name,
  `*.${name}`,
  `*.*.${name}`,
  `*.*.*.${name}`,
])

/** A deep copy of `value` with every secret-named field replaced by `[REDACTED]`. */
export function redactSecretFields<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > 8) return value
  if (value instanceof Error) {
    return { name: value.name, message: value.message, kind: (value as any).kind } as T
  }
  if (Array.isArray(value)) return value.map((v) => redactSecretFields(v, depth + 1)) as T
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = secretNames.has(key.toLowerCase()) ? REDACTED : redactSecretFields(item, depth + 1)
  }
  return out as T
}

/** Wrap a pino-compatible logger so no secret-named field is ever logged. */
export function secretSafeLogger(logger: Logger): Logger {
  const wrap =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (first: unknown, message?: string): void => {
      if (typeof first === 'string') {
        logger[level](first)
        return
      }
      const fields = redactSecretFields(first as Record<string, unknown>)
      if (message === undefined) logger[level](fields)
      else logger[level](fields, message)
    }
  const safe: Logger = {
    debug: wrap('debug') as Logger['debug'],
    info: wrap('info') as Logger['info'],
    warn: wrap('warn') as Logger['warn'],
    error: wrap('error') as Logger['error'],
  }
  if (logger.child) {
    const child = logger.child.bind(logger)
    safe.child = (bindings) => secretSafeLogger(child(redactSecretFields(bindings)))
  }
  return safe
}
