import { afterEach, describe, expect, it, vi } from 'vitest'
import { abortReason, raceAbort, sleep, throwIfAborted } from './abort.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('abortReason', () => {
  it('returns an Error named AbortError', () => {
    const controller = new AbortController()
    controller.abort()
    expect(abortReason(controller.signal).name).toBe('AbortError')
    const withText = new AbortController()
    withText.abort('user cancelled')
    expect(abortReason(withText.signal)).toMatchObject({
      name: 'AbortError',
      message: 'user cancelled',
    })
    const withError = new AbortController()
    const reason = new Error('shutdown')
    withError.abort(reason)
    expect(abortReason(withError.signal)).toBe(reason)
  })

  it('throwIfAborted throws only when aborted', () => {
    const controller = new AbortController()
    expect(() => throwIfAborted(controller.signal)).not.toThrow()
    expect(() => throwIfAborted(undefined)).not.toThrow()
    controller.abort()
    expect(() => throwIfAborted(controller.signal)).toThrow(
      expect.objectContaining({ name: 'AbortError' }),
    )
  })
})

describe('sleep', () => {
  it('resolves after the delay', async () => {
    vi.useFakeTimers()
    let done = false
    const waiting = sleep(1000).then(() => {
      done = true
    })
    await vi.advanceTimersByTimeAsync(999)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await waiting
    expect(done).toBe(true)
  })

  it('rejects at once when the signal aborts, and clears its timer', async () => {
    vi.useFakeTimers()
    const controller = new AbortController()
    const waiting = sleep(60_000, controller.signal)
    expect(vi.getTimerCount()).toBe(1)
    controller.abort()
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('rejects without waiting when already aborted', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(sleep(60_000, controller.signal)).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('removes its abort listener once it resolves', async () => {
    const controller = new AbortController()
    const remove = vi.spyOn(controller.signal, 'removeEventListener')
    await sleep(1, controller.signal)
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function))
  })
})

describe('raceAbort', () => {
  it('settles with the promise when not aborted', async () => {
    const controller = new AbortController()
    await expect(raceAbort(Promise.resolve(5), controller.signal)).resolves.toBe(5)
    await expect(raceAbort(Promise.reject(new Error('no')), controller.signal)).rejects.toThrow(
      'no',
    )
    await expect(raceAbort(Promise.resolve(6), undefined)).resolves.toBe(6)
  })

  it('rejects as soon as the signal aborts', async () => {
    const controller = new AbortController()
    const never = new Promise<never>(() => {})
    const raced = raceAbort(never, controller.signal)
    controller.abort()
    await expect(raced).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('rejects when already aborted and swallows the late rejection of the promise', async () => {
    const controller = new AbortController()
    controller.abort()
    const unhandled = vi.fn()
    process.on('unhandledRejection', unhandled)
    try {
      let reject!: (e: Error) => void
      const later = new Promise<never>((_, r) => {
        reject = r
      })
      await expect(raceAbort(later, controller.signal)).rejects.toMatchObject({
        name: 'AbortError',
      })
      reject(new Error('late'))
      await new Promise((r) => setTimeout(r, 10))
      expect(unhandled).not.toHaveBeenCalled()
    } finally {
      process.off('unhandledRejection', unhandled)
    }
  })
})

describe('sleep({ unref })', () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

  it('an unref timer does not keep the process alive; a plain one does', async () => {
    const before = timers()
    const plain = new AbortController()
    const held = sleep(60_000, plain.signal).catch(() => {})
    expect(timers()).toBe(before + 1)
    const loose = new AbortController()
    const unheld = sleep(60_000, loose.signal, { unref: true }).catch(() => {})
    expect(timers()).toBe(before + 1)
    plain.abort()
    loose.abort()
    await Promise.all([held, unheld])
    await expect(sleep(5, undefined, { unref: true })).resolves.toBeUndefined()
  })
})
