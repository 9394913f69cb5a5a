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

export interface RefusalLogOptions {
  /** Lines logged per interval before the rest are only counted. Default 10. */
  maxLines?: number
  /** The interval. Default 60 s. */
  intervalMs?: number
  /** Injectable clock for tests. */
  now?: () => number
}

/**
 * Logs refused requests (bad messages, refused credentials, paths outside the allowlist) at
 * warn, at most `maxLines` per interval: the rest are counted and reported in one line,
 * "suppressed K refused requests" (with the count per subject), when the interval ends. A
 * client sending thousands of bad messages costs a few lines a minute, not megabytes.
 */
export class RefusalLog {
  readonly #log: Logger
  readonly #max: number
  readonly #interval: number
  readonly #now: () => number
  #windowStart = Number.NEGATIVE_INFINITY
  #logged = 0
  #suppressed = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined

  constructor(log: Logger, options: RefusalLogOptions = {}) {
    this.#log = log
    this.#max = options.maxLines ?? 10
    this.#interval = options.intervalMs ?? 60_000
    this.#now = options.now ?? Date.now
  }

  /** One refused request: logged, or counted when this interval's lines are spent. */
  refused(subject: string, fields: Record<string, unknown>, message: string): void {
    const now = this.#now()
    if (now - this.#windowStart >= this.#interval) {
      this.flush()
      this.#windowStart = now
      this.#logged = 0
    }
    if (this.#logged < this.#max) {
      this.#logged++
      this.#log.warn({ subject, ...fields }, message)
      return
    }
    this.#suppressed.set(subject, (this.#suppressed.get(subject) ?? 0) + 1)
    // Reported at the end of the interval even when no further request comes.
    this.#timer ??= setTimeout(
      () => {
        this.#timer = undefined
        this.flush()
      },
      Math.max(0, this.#windowStart + this.#interval - now),
    )
    this.#timer.unref?.()
  }

  /** Logs the count of suppressed refusals now, if any (also called by `close`). */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#suppressed.size === 0) return
    const bySubject = Object.fromEntries(this.#suppressed)
    const total = [...this.#suppressed.values()].reduce((a, b) => a + b, 0)
    this.#suppressed = new Map()
    this.#log.warn(
      { suppressed: total, bySubject, intervalMs: this.#interval },
      `suppressed ${total} refused requests`,
    )
  }

  close(): void {
    this.flush()
  }
}
