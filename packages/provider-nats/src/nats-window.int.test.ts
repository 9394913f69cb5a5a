// Concurrent writes on one connection share its publish window: the window stays full across
// batch boundaries and never holds more than `maxInFlight` unacknowledged publishes.
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { MessageData } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { natsSkipReason, TestStream, testConnection } from './__fixtures__/nats-test-server.js'
import { PublishWindow, writeMessages } from './nats-sink.js'

const skip = await natsSkipReason()
const encoder = new TextEncoder()

describe('PublishWindow', () => {
  it('grants at most its size, hands a released slot to the next waiter, and cancels one owner only', async () => {
    const window = new PublishWindow(2)
    expect(window.tryAcquire()).toBe(true)
    expect(window.tryAcquire()).toBe(true)
    expect(window.tryAcquire()).toBe(false)
    const a = {}
    const b = {}
    const waitA = window.acquire(a)
    const waitB = window.acquire(b)
    window.cancel(a)
    expect(await waitA).toBe(false)
    window.release()
    expect(await waitB).toBe(true)
    expect(window.inFlight).toBe(2)
    window.release()
    window.release()
    expect(window.inFlight).toBe(0)
  })
})

describe.skipIf(skip)('shared publish window against the real server', () => {
  const stream = new TestStream()
  let nc: NatsConnection

  beforeAll(async () => {
    await stream.reset()
    nc = await testConnection()
  })
  afterAll(async () => {
    await nc?.close()
    await stream.destroy()
  })

  it('two batches written at once never exceed the window together, and every message is stored once', async () => {
    const js = jetstream(nc)
    let inFlight = 0
    let peak = 0
    const counting = new Proxy(js, {
      get(target, name, receiver) {
        if (name !== 'publish') return Reflect.get(target, name, receiver)
        return (...args: Parameters<typeof js.publish>) => {
          inFlight++
          peak = Math.max(peak, inFlight)
          return target.publish(...args).finally(() => {
            inFlight--
          })
        }
      },
    })
    const window = new PublishWindow(8)
    const batch = (label: string): MessageData[] =>
      Array.from({ length: 400 }, (_, i) => ({
        kind: 'message',
        id: `${label}-${i}`,
        payload: encoder.encode(`${label} ${i}`),
      }))
    const write = (label: string) =>
      writeMessages({
        js: counting,
        jsm: () => jetstreamManager(nc),
        settings: { subject: `${stream.prefix}.window`, maxInFlight: 8 },
        batch: batch(label),
        signal: new AbortController().signal,
        window,
      })
    const [first, second] = await Promise.all([write('a'), write('b')])
    expect(first).toEqual({ written: 400, failed: [] })
    expect(second).toEqual({ written: 400, failed: [] })
    expect(peak).toBe(8)
    expect(window.inFlight).toBe(0)
    const stored = await stream.stored(`${stream.prefix}.window`)
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(800)
  })

  it('an aborted batch gives up its waits and its slots; the other batch finishes', async () => {
    const window = new PublishWindow(2)
    const controller = new AbortController()
    const items = (label: string, n: number): MessageData[] =>
      Array.from({ length: n }, (_, i) => ({
        kind: 'message',
        id: `${label}-${i}`,
        payload: encoder.encode(String(i)),
      }))
    const options = (label: string, n: number, signal: AbortSignal) => ({
      js: jetstream(nc),
      jsm: () => jetstreamManager(nc),
      settings: { subject: `${stream.prefix}.abort`, maxInFlight: 2 },
      batch: items(label, n),
      signal,
      window,
    })
    const aborted = writeMessages(options('x', 5000, controller.signal))
    const other = writeMessages(options('y', 300, new AbortController().signal))
    setTimeout(() => controller.abort(), 20)
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
    expect(await other).toEqual({ written: 300, failed: [] })
    expect(window.inFlight).toBe(0)
  })
})
