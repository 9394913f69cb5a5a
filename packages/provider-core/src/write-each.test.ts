import { describe, expect, it } from 'vitest'
import { ProviderError } from './errors.js'
import { itemDataError, writeEachConcurrently } from './write-each.js'

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('writeEachConcurrently', () => {
  it('counts written items, reports data failures by index in order, and never exceeds the concurrency', async () => {
    let inFlight = 0
    let peak = 0
    const result = await writeEachConcurrently(
      [5, 1, 4, 2, 3, 0],
      { concurrency: 2, signal: new AbortController().signal },
      async (n) => {
        inFlight++
        peak = Math.max(peak, inFlight)
        await wait(n)
        inFlight--
        return n % 2 === 1 ? itemDataError(`item ${n}`, 'is odd') : undefined
      },
    )
    expect(peak).toBe(2)
    expect(result.written).toBe(3)
    expect(result.failed.map((f) => f.index)).toEqual([0, 1, 4])
    expect(result.failed[0]!.error.kind).toBe('data')
    expect(result.failed[0]!.error.message).toBe('item 5: is odd')
  })

  it('fails the whole batch on a thrown error and aborts the writes in flight', async () => {
    const aborted: number[] = []
    const failure = new ProviderError({ kind: 'transient', message: 'connection reset' })
    const outcome = writeEachConcurrently(
      [0, 1, 2, 3],
      { concurrency: 3, signal: new AbortController().signal },
      (n, _i, signal) => {
        if (n === 0) return wait(5).then(() => Promise.reject(failure))
        return new Promise<undefined>((resolve, reject) => {
          const timer = setTimeout(() => resolve(undefined), 1000)
          signal.addEventListener('abort', () => {
            clearTimeout(timer)
            aborted.push(n)
            reject(signal.reason)
          })
        })
      },
    )
    await expect(outcome).rejects.toBe(failure)
    expect(aborted.sort()).toEqual([1, 2])
  })

  it("stops at once when the caller's signal aborts", async () => {
    const controller = new AbortController()
    const outcome = writeEachConcurrently(
      [0, 1],
      { concurrency: 2, signal: controller.signal },
      (_n, _i, signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        ),
    )
    controller.abort(new Error('cancelled'))
    await expect(outcome).rejects.toThrow('cancelled')
  })
})
