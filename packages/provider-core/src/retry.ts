import { sleep, throwIfAborted } from './abort.js'
import { ProviderError, toProviderError } from './errors.js'

export interface RetryOptions {
  /** Attempts in all, the first included. Default 5. */
  maxAttempts?: number
  /** The first backoff ceiling in ms. Default 200. */
  baseDelayMs?: number
  /** The largest backoff in ms. Default 30 000. */
  maxDelayMs?: number
  /** The longest rate-limit wait honoured before giving up. Default 5 minutes. */
  maxRetryAfterMs?: number
  signal?: AbortSignal | undefined
  /** Whether an error is worth another attempt. Default: ProviderError kinds transient and rate_limited. */
  isRetryable?: (error: ProviderError) => boolean
  /** Turns a raw error into a ProviderError (a provider's own classifier). */
  classify?: (error: unknown) => ProviderError
  onRetry?: (info: { attempt: number; delayMs: number; error: ProviderError }) => void
  /** Replaces Math.random, for tests. */
  random?: () => number
}

/**
 * "Full jitter" exponential backoff (a random delay between 0 and min(max, base * 2^n)),
 * the scheme AWS's architecture blog recommends for contended retries.
 */
export function backoffDelay(
  attempt: number,
  base: number,
  max: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1))
  return Math.floor(random() * ceiling)
}

/**
 * Run `fn` until it succeeds, retrying transient and rate-limited failures with jittered
 * exponential backoff. A rate-limited error's `retryAfterMs` is waited in full (never less).
 * Every wait ends at once when the signal aborts.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5
  const base = options.baseDelayMs ?? 200
  const max = options.maxDelayMs ?? 30_000
  const maxRetryAfter = options.maxRetryAfterMs ?? 5 * 60_000
  const isRetryable = options.isRetryable ?? ((error: ProviderError) => error.retryable)
  const classify = options.classify ?? ((error: unknown) => toProviderError(error))
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(options.signal)
    try {
      return await fn(attempt)
    } catch (raw) {
      if (options.signal?.aborted) throw raw
      const error = ProviderError.isInstance(raw) ? raw : classify(raw)
      if (attempt >= maxAttempts || !isRetryable(error))
        throw ProviderError.isInstance(raw) ? raw : error
      let delayMs = backoffDelay(attempt, base, max, options.random)
      if (error.kind === 'rate_limited' && error.retryAfterMs !== undefined) {
        if (error.retryAfterMs > maxRetryAfter) throw error
        delayMs = Math.max(delayMs, error.retryAfterMs)
      }
      options.onRetry?.({ attempt, delayMs, error })
      await sleep(delayMs, options.signal)
    }
  }
}
