import {
  type ErrorKind,
  errorMessage,
  isTransientNetworkError,
  ProviderError,
} from '@nvisy/provider-core'

/**
 * Redis error replies start with an upper-case code (`WRONGPASS ...`, `LOADING ...`). The
 * kind each code maps to:
 *
 * - `auth`: WRONGPASS, NOAUTH (no or wrong credentials), NOPERM (the ACL user lacks a
 *   command or key permission: new credentials fix it, a retry does not).
 * - `transient`: LOADING (dataset loading), BUSY (a script is running), TRYAGAIN,
 *   CLUSTERDOWN, MASTERDOWN, READONLY (a failover made our node a replica), NOREPLICAS,
 *   MOVED/ASK that reach us, and OOM: with `maxmemory` reached, writes are refused until
 *   memory is freed by consumers trimming, keys expiring (our dedupe keys do) or eviction;
 *   the runtime retries with backoff and fails the run when its retry budget runs out.
 * - `config`: WRONGTYPE (the configured key holds another type: the stream settings point
 *   at the wrong key), and an unknown command or script error (server too old, module missing).
 */
const REPLY_KINDS: Record<string, ErrorKind> = {
  WRONGPASS: 'auth',
  NOAUTH: 'auth',
  NOPERM: 'auth',
  LOADING: 'transient',
  BUSY: 'transient',
  TRYAGAIN: 'transient',
  CLUSTERDOWN: 'transient',
  MASTERDOWN: 'transient',
  READONLY: 'transient',
  NOREPLICAS: 'transient',
  MOVED: 'transient',
  ASK: 'transient',
  OOM: 'transient',
  WRONGTYPE: 'config',
}

/** ioredis's own messages for a connection that is down or going down. */
const CONNECTION_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'Command timed out',
  'Socket closed unexpectedly',
  'Failed to refresh slots cache',
  'None of startup nodes is available',
  "Cluster isn't ready",
  'Too many Cluster redirections',
  'connect ETIMEDOUT',
]

function replyCode(message: string): string | undefined {
  const match = /^([A-Z][A-Z_]+)(?:\s|$)/.exec(message)
  return match?.[1]
}

/** Map an ioredis or socket error to a ProviderError, or undefined for the core's fallback. */
export function classifyRedisError(error: unknown): ProviderError | undefined {
  if (ProviderError.isInstance(error)) return error
  if (error === null || typeof error !== 'object') return undefined
  const message = errorMessage(error)
  // ioredis wraps script errors as "ERR Error running script ... WRONGTYPE ..." (Redis < 7)
  // or passes the inner reply through; look at the reply code either way.
  let code = replyCode(message)
  if (code === undefined || code === 'ERR') {
    for (const match of message.matchAll(/:\s([A-Z][A-Z_]+)\s/g)) {
      if (REPLY_KINDS[match[1]!]) {
        code = match[1]
        break
      }
    }
  }
  const socketCode = (error as { code?: unknown }).code
  if (isTransientNetworkError(error)) {
    return new ProviderError({
      kind: 'transient',
      message: `Redis connection failed: ${message}`,
      code: typeof socketCode === 'string' ? socketCode : undefined,
      cause: error,
    })
  }
  const replyKind = code === undefined ? undefined : REPLY_KINDS[code]
  if (replyKind) {
    return new ProviderError({
      kind: replyKind,
      message: `Redis refused: ${message}`,
      code,
      cause: error,
    })
  }
  if (/max number of clients reached/i.test(message)) {
    return new ProviderError({
      kind: 'transient',
      message: `Redis refused: ${message}`,
      code,
      cause: error,
    })
  }
  if (
    /AUTH .*called without any password configured/i.test(message) ||
    /invalid password/i.test(message)
  ) {
    return new ProviderError({
      kind: 'auth',
      message: `Redis refused the credentials: ${message}`,
      code,
      cause: error,
    })
  }
  if (/unknown command|Unknown Redis command/i.test(message)) {
    return new ProviderError({
      kind: 'config',
      message: `Redis does not support a command this provider needs (Redis 6.2+ required): ${message}`,
      code,
      cause: error,
    })
  }
  if (CONNECTION_MESSAGES.some((text) => message.includes(text))) {
    return new ProviderError({
      kind: 'transient',
      message: `Redis connection failed: ${message}`,
      cause: error,
    })
  }
  return undefined
}

/** A `data` error for one item, naming the item and never its body. */
export function itemError(message: string, cause?: unknown): ProviderError {
  return new ProviderError({ kind: 'data', message, cause })
}
