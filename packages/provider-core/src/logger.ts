import type { Redactor } from './redact.js'

type LogFn = {
  (message: string): void
  (fields: Record<string, unknown>, message?: string): void
}

/** The logger providers receive: the call shape pino uses, so a pino logger fits as it is. */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  child?(bindings: Record<string, unknown>): Logger
}

const noop = () => {}
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/** Wrap a logger so every string and field it is given has the known secrets removed. */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  if (redactor.isEmpty) return logger
  const wrap = (level: 'debug' | 'info' | 'warn' | 'error'): LogFn =>
    ((first: unknown, message?: string) => {
      if (typeof first === 'string') return logger[level](redactor.text(first))
      const fields = redactor.value(first as Record<string, unknown>)
      return message === undefined
        ? logger[level](fields)
        : logger[level](fields, redactor.text(message))
    }) as LogFn
  const wrapped: Logger = {
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
  }
  if (logger.child)
    wrapped.child = (bindings) => redactingLogger(logger.child!(redactor.value(bindings)), redactor)
  return wrapped
}

/** A logger that keeps every line in memory, for tests that assert what was logged. */
export function memoryLogger(): Logger & {
  lines: { level: string; fields?: unknown; message?: string }[]
} {
  const lines: { level: string; fields?: unknown; message?: string }[] = []
  const make = (level: string): LogFn =>
    ((first: unknown, message?: string) => {
      if (typeof first === 'string') lines.push({ level, message: first })
      else lines.push({ level, fields: first, message })
    }) as LogFn
  const logger = {
    lines,
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
  } as Logger & {
    lines: typeof lines
  }
  logger.child = () => logger
  return logger
}
