import { DeliverPolicy } from '@nats-io/jetstream'
import {
  type GuardedConnection,
  type MessageData,
  ProviderError,
  type ReadItem,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  freePort,
  NATS_URL,
  natsSkipReason,
  TestStream,
  testConnection,
} from './__fixtures__/nats-test-server.js'
import { createNatsProvider, natsProvider } from './nats-provider.js'
import type { NatsContext } from './nats-schemas.js'

const skip = await natsSkipReason()
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const never = () => new AbortController().signal

function payloadText(item: ReadItem): string {
  return decoder.decode((item.data as MessageData).payload)
}

async function caught(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error), `expected a ProviderError, got ${String(error)}`).toBe(
    true,
  )
  return error as ProviderError
}

describe.skipIf(skip)('nats provider against a real server', () => {
  const stream = new TestStream({ max_msg_size: 64 * 1024 })
  let connection: GuardedConnection

  beforeAll(async () => {
    await stream.reset()
    connection = await natsProvider.connect({
      credentials: {},
      params: { servers: NATS_URL, stream: stream.name },
    })
  })
  afterAll(async () => {
    await connection?.close()
    await stream.destroy()
  })
  beforeEach(() => stream.reset())

  it('round-trips headers, binary payloads, ids, subjects and timestamps', async () => {
    const binary = new Uint8Array(256).map((_, i) => i)
    const before = Date.now()
    const result = await connection.write(
      {},
      [
        {
          kind: 'message',
          id: 'bin-1',
          subject: `${stream.prefix}.rt.a`,
          payload: binary,
          headers: {
            'X-Trace': 'abc',
            'content-type': 'application/octet-stream',
            'Nats-Expected-Stream': 'nope',
          },
        },
        {
          kind: 'message',
          id: 'empty-1',
          subject: `${stream.prefix}.rt.b`,
          payload: new Uint8Array(0),
        },
      ],
      { signal: never() },
    )
    expect(result).toEqual({ written: 2, failed: [] })
    // A message published by someone else, without Nats-Msg-Id.
    const seq = await stream.publish(`${stream.prefix}.rt.c`, 'plain')

    const items = await readAll(connection, {})
    expect(items.map((i) => i.context)).toEqual([{ seq: 1 }, { seq: 2 }, { seq: 3 }])
    const [first, second, third] = items.map((i) => i.data as MessageData)
    expect(first!.id).toBe('bin-1')
    expect(first!.subject).toBe(`${stream.prefix}.rt.a`)
    expect([...first!.payload]).toEqual([...binary])
    // Nats-* headers are the client's and server's own: never written from data, never read back.
    expect(first!.headers).toEqual({ 'X-Trace': 'abc', 'content-type': 'application/octet-stream' })
    expect(first!.timestamp).toBeInstanceOf(Date)
    expect(first!.timestamp!.getTime()).toBeGreaterThanOrEqual(before - 1000)
    expect(first!.timestamp!.getTime()).toBeLessThanOrEqual(Date.now() + 1000)
    expect(second!.id).toBe('empty-1')
    expect(second!.payload.length).toBe(0)
    expect(second!.headers).toBeUndefined()
    expect(third!.id).toBe(`${stream.name}:${seq}`)
    expect(decoder.decode(third!.payload)).toBe('plain')
  })

  it('resumes after sequence N with exactly N+1.. and filters by subject', async () => {
    for (let i = 1; i <= 20; i++)
      await stream.publish(`${stream.prefix}.${i % 2 === 0 ? 'even' : 'odd'}`, `m${i}`)
    const all = await readAll(connection, {})
    expect(all.map(payloadText)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i + 1}`))
    const rest = await readAll<NatsContext>(connection, {}, { after: { seq: 7 } })
    expect(rest.map((i) => i.context.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 8))
    expect(await readAll(connection, {}, { after: { seq: 20 } })).toEqual([])
    expect(await readAll(connection, {}, { after: { seq: 500 } })).toEqual([])

    const even = await readAll(connection, { subject: `${stream.prefix}.even` })
    expect(even.map(payloadText)).toEqual([
      'm2',
      'm4',
      'm6',
      'm8',
      'm10',
      'm12',
      'm14',
      'm16',
      'm18',
      'm20',
    ])
    const evenAfter = await readAll(
      connection,
      { subject: `${stream.prefix}.even` },
      { after: even[6]!.context },
    )
    expect(evenAfter.map(payloadText)).toEqual(['m16', 'm18', 'm20'])
    // The last odd message is before the stream's last sequence: the read still ends.
    const odd = await readAll(
      connection,
      { subject: `${stream.prefix}.odd` },
      { after: { seq: 17 } },
    )
    expect(odd.map(payloadText)).toEqual(['m19'])
    expect(await readAll(connection, { subject: `${stream.prefix}.none` })).toEqual([])
  })

  it('reads an empty stream as nothing, and ends at the last sequence as of the start of the read', async () => {
    expect(await readAll(connection, {})).toEqual([])
    for (let i = 0; i < 50; i++) await stream.publish(`${stream.prefix}.live`, `m${i}`)
    // Publish more while reading: those arrive after the read started and are left for the next run.
    const items: ReadItem<NatsContext>[] = []
    for await (const item of connection.read({}, { signal: never() })) {
      items.push(item)
      if (items.length === 1)
        for (let i = 50; i < 60; i++) await stream.publish(`${stream.prefix}.live`, `m${i}`)
    }
    expect(items.length).toBe(50)
    const next = await readAll(connection, {}, { after: items[49]!.context })
    expect(next.map(payloadText)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 50}`))
  })

  it('drops a duplicate publish within the duplicate window, counting it as written', async () => {
    const batch = (n: number): MessageData[] =>
      Array.from({ length: n }, (_, i) => ({
        kind: 'message',
        id: `dup-${i}`,
        subject: `${stream.prefix}.dup`,
        payload: encoder.encode(`v${i}`),
      }))
    expect(await connection.write({}, batch(30), { signal: never() })).toEqual({
      written: 30,
      failed: [],
    })
    expect(await connection.write({}, batch(40), { signal: never() })).toEqual({
      written: 40,
      failed: [],
    })
    const stored = await stream.stored(`${stream.prefix}.dup`)
    expect(stored.map((m) => m.msgId)).toEqual(Array.from({ length: 40 }, (_, i) => `dup-${i}`))
  })

  it('publishes to the sink subject from settings with any in-flight window', async () => {
    for (const maxInFlight of [1, 3, 256]) {
      const items: MessageData[] = Array.from({ length: 25 }, (_, i) => ({
        kind: 'message',
        id: `w${maxInFlight}-${i}`,
        subject: 'ignored.when.settings.name.one',
        payload: encoder.encode(String(i)),
      }))
      const result = await connection.write(
        { subject: `${stream.prefix}.fixed`, maxInFlight },
        items,
        { signal: never() },
      )
      expect(result).toEqual({ written: 25, failed: [] })
    }
    const stored = await stream.stored(`${stream.prefix}.fixed`)
    expect(stored.length).toBe(75)
    expect(stored.slice(0, 25).map((m) => decoder.decode(m.data))).toEqual(
      Array.from({ length: 25 }, (_, i) => String(i)),
    )
  })

  it('fails bad messages alone: no subject, no stream for the subject, over max_payload, over max_msg_size', async () => {
    const ok = (i: number): MessageData => ({
      kind: 'message',
      id: `ok-${i}`,
      subject: `${stream.prefix}.ok`,
      payload: encoder.encode(String(i)),
    })
    const batch: MessageData[] = [
      ok(0),
      { kind: 'message', id: 'no-subject', payload: encoder.encode('x') },
      ok(1),
      {
        kind: 'message',
        id: 'nowhere',
        subject: `nvisy.nowhere.${stream.suffix}`,
        payload: encoder.encode('x'),
      },
      {
        kind: 'message',
        id: 'huge',
        subject: `${stream.prefix}.ok`,
        payload: new Uint8Array(2 * 1024 * 1024),
      },
      {
        kind: 'message',
        id: 'large',
        subject: `${stream.prefix}.ok`,
        payload: new Uint8Array(100 * 1024),
      },
      ok(2),
    ]
    const result = await connection.write({}, batch, { signal: never() })
    expect(result.written).toBe(3)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [3, 'data'],
      [4, 'data'],
      [5, 'data'],
    ])
    expect(result.failed[1]!.error.code).toBe('NO_STREAM_FOR_SUBJECT')
    expect(result.failed[2]!.error.code).toBe('MAX_PAYLOAD')
    expect(result.failed[3]!.error.message).toMatch(/large/)
    const stored = await stream.stored(`${stream.prefix}.>`)
    expect(stored.map((m) => m.msgId)).toEqual(['ok-0', 'ok-1', 'ok-2'])

    // A sink subject that no stream captures is a configuration problem.
    const misrouted = await connection.write(
      { subject: `nvisy.nowhere.${stream.suffix}` },
      [ok(9)],
      { signal: never() },
    )
    expect(misrouted.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
      [0, 'config', 'NO_STREAM_FOR_SUBJECT'],
    ])
    // A publish captured by another stream than the one the sink expects.
    const wrongStream = await connection.write({ stream: 'SOME_OTHER_STREAM' }, [ok(10)], {
      signal: never(),
    })
    expect(wrongStream.written).toBe(0)
    expect(wrongStream.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
      [0, 'config', 'JS_10060'],
    ])
  })

  it('abort stops a read promptly and removes its consumer', async () => {
    const payload = new Uint8Array(1000)
    const items: MessageData[] = Array.from({ length: 3000 }, (_, i) => ({
      kind: 'message',
      id: `a-${i}`,
      subject: `${stream.prefix}.abort`,
      payload,
    }))
    await connection.write({}, items, { signal: never() })
    const controller = new AbortController()
    let count = 0
    const started = Date.now()
    const error = await (async () => {
      for await (const _ of connection.read({}, { signal: controller.signal })) {
        if (++count === 10) controller.abort()
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((error as Error).name).toBe('AbortError')
    expect(count).toBe(10)
    expect(Date.now() - started).toBeLessThan(2000)
    const nc = await stream.connection()
    const { jetstreamManager } = await import('@nats-io/jetstream')
    const jsm = await jetstreamManager(nc)
    await expect
      .poll(async () => (await jsm.streams.info(stream.name)).state.consumer_count, {
        timeout: 3000,
      })
      .toBe(0)
  })

  it('an already aborted signal reads nothing; an aborted write throws AbortError', async () => {
    await stream.publish(`${stream.prefix}.x`, 'x')
    const controller = new AbortController()
    controller.abort()
    const iterator = connection.read({}, { signal: controller.signal })[Symbol.asyncIterator]()
    await expect(iterator.next()).rejects.toMatchObject({ name: 'AbortError' })
    const written = connection.write(
      {},
      [{ kind: 'message', id: 'z', subject: `${stream.prefix}.x`, payload: new Uint8Array(1) }],
      { signal: controller.signal },
    )
    // The guard wraps a write's abort in a ProviderError; the AbortError is its cause.
    const error = await written.then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(
      error?.name === 'AbortError' || (error?.cause as Error | undefined)?.name === 'AbortError',
    ).toBe(true)
    expect((await stream.stored(`${stream.prefix}.x`)).length).toBe(1)
  })

  it('an abort during a write stops publishing and throws AbortError', async () => {
    const items: MessageData[] = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'message',
      id: `slow-${i}`,
      subject: `${stream.prefix}.slow`,
      payload: encoder.encode(String(i)),
    }))
    const controller = new AbortController()
    const writing = connection.write({ maxInFlight: 1 }, items, { signal: controller.signal })
    setTimeout(() => controller.abort(), 30)
    const error = await writing.then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(
      error?.name === 'AbortError' || (error?.cause as Error | undefined)?.name === 'AbortError',
    ).toBe(true)
    const stored = await stream.stored(`${stream.prefix}.slow`)
    expect(stored.length).toBeGreaterThan(0)
    expect(stored.length).toBeLessThan(5000)
  })

  it('discovers streams with their subjects', async () => {
    const streams = await connection.discover()
    const mine = streams.find((s) => s.name === stream.name)
    expect(mine).toMatchObject({ type: 'stream', data: 'message', stream: { stream: stream.name } })
    expect(mine!.description).toContain(`${stream.prefix}.>`)
    // Discovered settings are valid stream settings.
    expect(natsProvider.validateStream(mine!.stream)).toEqual({ stream: stream.name })
  })

  it('classifies a missing stream as not_found and a refused connection as transient', async () => {
    const missing = await natsProvider.connect({
      credentials: {},
      params: { servers: NATS_URL, stream: 'NVISY_NO_SUCH_STREAM' },
    })
    try {
      expect((await caught(missing.check())).kind).toBe('not_found')
      expect((await caught(readAll(missing, {}))).kind).toBe('not_found')
    } finally {
      await missing.close()
    }
    const port = await freePort()
    const refused = await caught(
      natsProvider.connect({ credentials: {}, params: { servers: `127.0.0.1:${port}` } }),
    )
    expect(refused.kind).toBe('transient')
    expect(refused.operation).toBe('connect')
    // A read with no stream anywhere is a config error that names the field.
    const unnamed = await natsProvider.connect({ credentials: {}, params: { servers: NATS_URL } })
    try {
      const error = await caught(readAll(unnamed, {}))
      expect(error.kind).toBe('config')
      expect(error.issues?.[0]?.path).toBe('/stream/stream')
    } finally {
      await unnamed.close()
    }
  })

  it('uses an injected connection without closing it', async () => {
    const nc = await testConnection()
    try {
      const provider = createNatsProvider({ connection: nc })
      const shared = await provider.connect({
        credentials: {},
        params: { servers: 'unused:1', stream: stream.name },
      })
      await shared.check()
      await stream.publish(`${stream.prefix}.shared`, 'one')
      expect((await readAll(shared, {})).map(payloadText)).toEqual(['one'])
      await shared.close()
      expect(nc.isClosed()).toBe(false)
    } finally {
      await nc.close()
    }
  })

  it('reads from a start sequence the same way a raw ordered consumer does', async () => {
    for (let i = 0; i < 5; i++) await stream.publish(`${stream.prefix}.raw`, `r${i}`)
    const { jetstream } = await import('@nats-io/jetstream')
    const consumer = await jetstream(await stream.connection()).consumers.get(stream.name, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: 3,
    })
    const raw: number[] = []
    const messages = await consumer.consume()
    for await (const m of messages) {
      raw.push(m.seq)
      if (m.info.pending === 0) break
    }
    await consumer.delete()
    expect(
      (await readAll<NatsContext>(connection, {}, { after: { seq: 2 } })).map((i) => i.context.seq),
    ).toEqual(raw)
  })
})
