import { afterEach, describe, expect, it, vi } from 'vitest'
import { ProviderError } from './errors.js'
import { backoffDelay, retry } from './retry.js'

const transient = () => new ProviderError({ kind: 'transient', message: 'try again' })

afterEach(() => {
  vi.useRealTimers()
})

describe('backoffDelay', () => {
  it('is full jitter under an exponential ceiling capped at max', () => {
    expect(backoffDelay(1, 100, 10_000, () => 0.5)).toBe(50)
    expect(backoffDelay(2, 100, 10_000, () => 0.5)).toBe(100)
    expect(backoffDelay(3, 100, 10_000, () => 0.999)).toBe(399)
    expect(backoffDelay(20, 100, 1000, () => 0.5)).toBe(500)
    expect(backoffDelay(1, 100, 1000, () => 0)).toBe(0)
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(4, 100, 10_000)
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThan(800)
    }
  })
})

describe('retry', () => {
  it('returns the first success and passes the attempt number', async () => {
    const attempts: number[] = []
    const result = await retry(
      async (attempt) => {
        attempts.push(attempt)
        if (attempt < 3) throw transient()
        return 'ok'
      },
      { random: () => 0 },
    )
    expect(result).toBe('ok')
    expect(attempts).toEqual([1, 2, 3])
  })

  it('retries socket errors classified as transient', async () => {
    let calls = 0
    const result = await retry(
      async () => {
        calls++
        if (calls === 1) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' })
        return calls
      },
      { random: () => 0 },
    )
    expect(result).toBe(2)
  })

  for (const kind of ['config', 'auth', 'data', 'not_found', 'internal'] as const) {
    it(`does not retry ${kind} errors and rethrows the same error`, async () => {
      const error = new ProviderError({ kind, message: kind })
      const fn = vi.fn(async () => {
        throw error
      })
      await expect(retry(fn, { random: () => 0 })).rejects.toBe(error)
      expect(fn).toHaveBeenCalledTimes(1)
    })
  }

  it('does not retry an unknown raw error, throwing it classified as internal', async () => {
    const raw = new Error('bug')
    const fn = vi.fn(async () => {
      throw raw
    })
    const error = await retry(fn, { random: () => 0 }).catch((e) => e)
    expect(fn).toHaveBeenCalledTimes(1)
    expect(ProviderError.isInstance(error)).toBe(true)
    expect(error.kind).toBe('internal')
    expect(error.cause).toBe(raw)
  })

  it('gives up after maxAttempts with the last error', async () => {
    let calls = 0
    const errors: ProviderError[] = []
    const error = await retry(
      async () => {
        calls++
        const e = new ProviderError({ kind: 'transient', message: `attempt ${calls}` })
        errors.push(e)
        throw e
      },
      { maxAttempts: 4, random: () => 0 },
    ).catch((e) => e)
    expect(calls).toBe(4)
    expect(error).toBe(errors[3])
  })

  it('calls onRetry before every wait with the attempt, delay and error', async () => {
    const seen: { attempt: number; delayMs: number; kind: string }[] = []
    await retry(
      async (attempt) => {
        if (attempt < 3) throw transient()
      },
      {
        baseDelayMs: 10,
        random: () => 0.5,
        onRetry: ({ attempt, delayMs, error }) => seen.push({ attempt, delayMs, kind: error.kind }),
      },
    )
    expect(seen).toEqual([
      { attempt: 1, delayMs: 5, kind: 'transient' },
      { attempt: 2, delayMs: 10, kind: 'transient' },
    ])
  })

  it('uses a custom classifier and isRetryable', async () => {
    let calls = 0
    await retry(
      async () => {
        calls++
        if (calls < 3) throw { status: 503 }
      },
      {
        random: () => 0,
        classify: (e) =>
          new ProviderError({
            kind: (e as { status: number }).status === 503 ? 'transient' : 'internal',
            message: 'x',
          }),
      },
    )
    expect(calls).toBe(3)
    const never = vi.fn(async () => {
      throw transient()
    })
    await expect(retry(never, { isRetryable: () => false })).rejects.toMatchObject({
      kind: 'transient',
    })
    expect(never).toHaveBeenCalledTimes(1)
  })

  it('waits at least retryAfterMs for a rate-limited error', async () => {
    vi.useFakeTimers()
    const events: string[] = []
    let calls = 0
    const done = retry(
      async () => {
        calls++
        events.push(`attempt ${calls}`)
        if (calls === 1)
          throw new ProviderError({
            kind: 'rate_limited',
            message: 'slow down',
            retryAfterMs: 5000,
          })
        return 'ok'
      },
      {
        baseDelayMs: 10,
        random: () => 0,
        onRetry: ({ delayMs }) => events.push(`wait ${delayMs}`),
      },
    )
    await vi.advanceTimersByTimeAsync(4999)
    expect(calls).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    await expect(done).resolves.toBe('ok')
    expect(events).toEqual(['attempt 1', 'wait 5000', 'attempt 2'])
  })

  it('keeps the larger backoff when it exceeds retryAfterMs', async () => {
    const delays: number[] = []
    let calls = 0
    await retry(
      async () => {
        calls++
        if (calls === 1)
          throw new ProviderError({ kind: 'rate_limited', message: 'x', retryAfterMs: 1 })
      },
      { baseDelayMs: 20, random: () => 0.5, onRetry: ({ delayMs }) => delays.push(delayMs) },
    )
    expect(delays).toEqual([10])
  })

  it('gives up at once when retryAfterMs exceeds maxRetryAfterMs', async () => {
    const fn = vi.fn(async () => {
      throw new ProviderError({
        kind: 'rate_limited',
        message: 'come back tomorrow',
        retryAfterMs: 86_400_000,
      })
    })
    await expect(retry(fn, { maxRetryAfterMs: 60_000 })).rejects.toMatchObject({
      kind: 'rate_limited',
    })
    expect(fn).toHaveBeenCalledTimes(1)
  })

  it('rejects at once with an AbortError when aborted during a wait', async () => {
    const controller = new AbortController()
    let calls = 0
    const done = retry(
      async () => {
        calls++
        throw transient()
      },
      {
        baseDelayMs: 60_000,
        random: () => 1,
        signal: controller.signal,
        onRetry: () => queueMicrotask(() => controller.abort()),
      },
    )
    const error = await done.catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(calls).toBe(1)
  })

  it('does not start when the signal is already aborted', async () => {
    const controller = new AbortController()
    controller.abort()
    const fn = vi.fn(async () => 1)
    await expect(retry(fn, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    })
    expect(fn).not.toHaveBeenCalled()
  })

  it('does not retry when the attempt failed because of an abort', async () => {
    const controller = new AbortController()
    const fn = vi.fn(async () => {
      controller.abort()
      throw transient()
    })
    await expect(retry(fn, { signal: controller.signal, random: () => 0 })).rejects.toMatchObject({
      kind: 'transient',
    })
    expect(fn).toHaveBeenCalledTimes(1)
  })
})
