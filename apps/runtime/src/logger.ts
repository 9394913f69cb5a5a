import type { Logger } from '@nvisy/provider-core'
import { pino } from 'pino'
import { PINO_REDACT_PATHS } from './nats/logging.js'

/** A pino logger writing JSON lines to `destination`, with secret-named fields censored. */
export function createLogger(
  destination: { write(chunk: string): unknown },
  level = 'info',
): Logger {
  return pino(
    {
      name: 'nvisy',
      level,
      base: undefined,
      redact: { paths: [...PINO_REDACT_PATHS], censor: '[REDACTED]' },
      serializers: { err: (e: unknown) => e },
    },
    destination,
  ) as unknown as Logger
}
