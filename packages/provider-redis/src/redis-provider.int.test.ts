import { randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import {
  type Data,
  type DocumentData,
  type GuardedConnection,
  type MessageData,
  ProviderError,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  adminClient,
  deleteKeys,
  randomSuffix,
  redisInput,
  redisSkipReason,
  redisTarget,
} from './__fixtures__/redis-env.js'
import { createRedisProvider, redisProvider } from './index.js'

const skip = await redisSkipReason()
// Resuming a SCAN needs an unchanged keyspace: the document-resume test uses its own database.
const SCAN_DB = Number(process.env.NVISY_TEST_REDIS_SCAN_DB ?? 10)
const prefix = `nvisy-test:${randomSuffix()}:`
const signal = () => new AbortController().signal

function collect(connection: GuardedConnection, stream: unknown, after?: unknown) {
  return readAll(connection, stream, { after })
}

async function errorOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(ProviderError.isInstance(error), `expected a ProviderError, got ${String(error)}`).toBe(
    true,
  )
  return error as ProviderError
}

describe.skipIf(skip)('redis provider against a real server', () => {
  let admin: Redis
  let scanAdmin: Redis
  let connection: GuardedConnection

  beforeAll(async () => {
    admin = adminClient()
    scanAdmin = adminClient(SCAN_DB)
    connection = await redisProvider.connect(redisInput())
  })
  afterAll(async () => {
    await connection?.close()
    await deleteKeys(admin, prefix)
    await deleteKeys(scanAdmin, prefix)
    admin.disconnect()
    scanAdmin.disconnect()
  })

  describe('messages', () => {
    it('round-trips binary payloads byte-exact, with headers, subject, id and timestamp', async () => {
      const key = `${prefix}binary`
      const payloads = [
        new Uint8Array(0),
        new Uint8Array([0, 255, 0, 13, 10, 0xc3, 0x28]),
        randomBytes(64 * 1024),
        new Uint8Array(randomBytes(300).buffer, 7, 200), // a view with an offset
      ]
      const messages: MessageData[] = payloads.map((payload, i) => ({
        kind: 'message',
        id: `m-${i}`,
        payload,
        headers: {
          'content-type': 'application/octet-stream',
          'x-ünïcode': `värde ${i}`,
          empty: '',
        },
        subject: `orders.${i}`,
      }))
      const before = Date.now()
      const result = await connection.write({ kind: 'stream', key }, messages, { signal: signal() })
      expect(result).toEqual({ written: 4, failed: [] })
      const items = await collect(connection, { kind: 'stream', key })
      expect(items.map((item) => (item.data as MessageData).id)).toEqual([
        'm-0',
        'm-1',
        'm-2',
        'm-3',
      ])
      items.forEach((item, i) => {
        const data = item.data as MessageData
        expect(Buffer.from(data.payload).equals(Buffer.from(payloads[i]!))).toBe(true)
        expect(data.headers).toEqual(messages[i]!.headers)
        expect(data.subject).toBe(`orders.${i}`)
        expect(data.timestamp!.getTime()).toBeGreaterThanOrEqual(before - 1000)
        expect(item.context).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) })
        expect(Number((item.context as { id: string }).id.split('-')[0])).toBe(
          data.timestamp!.getTime(),
        )
      })
    })

    it('writes 10k messages in one batch, pipelined, and reads them back in order', async () => {
      const key = `${prefix}bulk`
      const batch: MessageData[] = Array.from({ length: 10_000 }, (_, i) => ({
        kind: 'message',
        id: `bulk-${i}`,
        payload: Buffer.from(JSON.stringify({ i, text: 'x'.repeat(100) })),
      }))
      const result = await connection.write({ kind: 'stream', key }, batch, { signal: signal() })
      expect(result).toEqual({ written: 10_000, failed: [] })
      expect(await admin.xlen(key)).toBe(10_000)
      // Replaying the batch appends nothing.
      await connection.write({ kind: 'stream', key }, batch, { signal: signal() })
      expect(await admin.xlen(key)).toBe(10_000)
      const items = await collect(connection, { kind: 'stream', key, count: 999 })
      expect(items.map((item) => (item.data as MessageData).id)).toEqual(batch.map((m) => m.id))
    })

    it('sets the dedupe key with the configured TTL, and a duplicate within one batch is written once', async () => {
      const key = `${prefix}dedupe`
      const message: MessageData = { kind: 'message', id: 'dup', payload: Buffer.from('a') }
      const result = await connection.write(
        { kind: 'stream', key, dedupeTtlSeconds: 120 },
        [message, message],
        { signal: signal() },
      )
      expect(result).toEqual({ written: 2, failed: [] })
      expect(await admin.xlen(key)).toBe(1)
      const ttl = await admin.pttl(`${key}:nvisy-dedupe:dup`)
      expect(ttl).toBeGreaterThan(110_000)
      expect(ttl).toBeLessThanOrEqual(120_000)
      const [[entryId]] = (await admin.xrange(key, '-', '+')) as [[string, string[]]]
      expect(await admin.get(`${key}:nvisy-dedupe:dup`)).toBe(entryId)
      // Once the dedupe key is gone, the id is new again: the guarantee lasts as long as the TTL.
      await admin.del(`${key}:nvisy-dedupe:dup`)
      await connection.write({ kind: 'stream', key }, [message], { signal: signal() })
      expect(await admin.xlen(key)).toBe(2)
    })

    it('trims with maxLen', async () => {
      const key = `${prefix}trim`
      const batch: MessageData[] = Array.from({ length: 2000 }, (_, i) => ({
        kind: 'message',
        id: `t-${i}`,
        payload: Buffer.from('x'),
      }))
      await connection.write({ kind: 'stream', key, maxLen: 100 }, batch, { signal: signal() })
      const length = await admin.xlen(key)
      expect(length).toBeLessThan(2000)
      expect(length).toBeGreaterThanOrEqual(100)
    })

    it('reads entries written by others: the fields become headers, the entry id the message id', async () => {
      const key = `${prefix}foreign`
      const entryId = await admin.xadd(key, '*', 'event', 'created', 'payload', 'body')
      const [item] = await collect(connection, { kind: 'stream', key })
      const data = item!.data as MessageData
      expect(data.id).toBe(entryId)
      expect(data.headers).toEqual({ event: 'created' })
      expect(Buffer.from(data.payload).toString()).toBe('body')
    })

    it('an absent stream reads as empty; a key of another type is a config error', async () => {
      expect(await collect(connection, { kind: 'stream', key: `${prefix}absent` })).toEqual([])
      await admin.set(`${prefix}string`, 'x')
      const readError = await errorOf(
        collect(connection, { kind: 'stream', key: `${prefix}string` }),
      )
      expect(readError.kind).toBe('config')
      expect(readError.code).toBe('WRONGTYPE')
      const result = await connection.write(
        { kind: 'stream', key: `${prefix}string` },
        [{ kind: 'message', id: 'a', payload: Buffer.from('x') }],
        { signal: signal() },
      )
      // WRONGTYPE is about the stream, not the item: every item of the batch fails with it.
      expect(result.written).toBe(0)
      expect(result.failed.map((f) => f.index)).toEqual([0])
      expect(result.failed[0]!.error.message).toContain('WRONGTYPE')
    })

    it('rejects a context of the wrong kind as config', async () => {
      const error = await errorOf(
        collect(connection, { kind: 'stream', key: `${prefix}absent` }, { cursor: '0', key: 'x' }),
      )
      expect(error.kind).toBe('config')
    })
  })

  describe('documents', () => {
    it('writes JSON text at prefix + id, applies ttlSeconds, and deletes by id', async () => {
      const sinkPrefix = `${prefix}docs:`
      const docs: DocumentData[] = [
        {
          kind: 'document',
          id: 'a',
          content: { n: 1, nested: { list: [1, 'two', null] }, text: 'ünï' },
        },
        { kind: 'document', id: 'b', content: {} },
      ]
      const result = await connection.write(
        { kind: 'document', prefix: sinkPrefix, ttlSeconds: 60 },
        docs,
        {
          signal: signal(),
        },
      )
      expect(result).toEqual({ written: 2, failed: [] })
      expect(JSON.parse((await admin.get(`${sinkPrefix}a`))!)).toEqual(docs[0]!.content)
      const ttl = await admin.ttl(`${sinkPrefix}a`)
      expect(ttl).toBeGreaterThan(50)
      expect(ttl).toBeLessThanOrEqual(60)
      await connection.write({ kind: 'document', prefix: sinkPrefix }, [docs[1]!], {
        signal: signal(),
      })
      expect(await admin.ttl(`${sinkPrefix}b`)).toBe(-1)
      const deleted = await connection.delete(
        { kind: 'document', prefix: sinkPrefix },
        ['a', 'missing'],
        {
          signal: signal(),
        },
      )
      expect(deleted).toEqual({ written: 2, failed: [] })
      expect(await admin.exists(`${sinkPrefix}a`)).toBe(0)
    })

    it('matches the prefix literally (glob characters are escaped) and skips keys of other types', async () => {
      const globPrefix = `${prefix}glob*[x]?:`
      await admin.set(`${globPrefix}one`, JSON.stringify({ v: 1 }))
      await admin.set(`${prefix}globZZ:two`, JSON.stringify({ v: 2 }))
      await admin.hset(`${globPrefix}hash`, 'f', 'v')
      const items = await collect(connection, { kind: 'document', prefix: globPrefix })
      expect(items.map((item) => (item.data as DocumentData).id)).toEqual(['one'])
    })

    it('a value that is not a JSON object fails the read with a data error naming the key', async () => {
      const badPrefix = `${prefix}bad:`
      await admin.set(`${badPrefix}k`, 'not json')
      const error = await errorOf(collect(connection, { kind: 'document', prefix: badPrefix }))
      expect(error.kind).toBe('data')
      expect(error.message).toContain(`${badPrefix}k`)
    })

    it('resumes after every item of a multi-page SCAN with exactly the rest', async () => {
      const scanPrefix = `${prefix}scan:`
      const pipeline = scanAdmin.pipeline()
      for (let i = 0; i < 60; i++) pipeline.set(`${scanPrefix}${i}`, JSON.stringify({ i }))
      await pipeline.exec()
      // Let the server finish growing its hash table (active rehashing runs every 100 ms):
      // SCAN pages repeat only while the table is not being resized.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const scanConnection = await redisProvider.connect(redisInput(SCAN_DB))
      try {
        const stream = { kind: 'document', prefix: scanPrefix, count: 3 }
        const all = await collect(scanConnection, stream)
        const ids = all.map((item) => (item.data as DocumentData).id)
        expect([...ids].sort()).toEqual(Array.from({ length: 60 }, (_, i) => String(i)).sort())
        const cursors = new Set(all.map((item) => (item.context as { cursor: string }).cursor))
        expect(cursors.size, 'the keys span several SCAN pages').toBeGreaterThan(3)
        for (let k = 0; k < all.length; k++) {
          const rest = await collect(
            scanConnection,
            stream,
            JSON.parse(JSON.stringify(all[k]!.context)),
          )
          expect(rest.map((item) => (item.data as DocumentData).id)).toEqual(ids.slice(k + 1))
        }
        // Once the keyspace changes, page boundaries move: a resume may repeat a page's keys
        // (SCAN's own at-least-once), but never skips a key that was there all along.
        for (const k of [0, 10, 30, 58]) {
          await scanAdmin.del(`${scanPrefix}${ids[k]}`)
          await scanAdmin.set(`${scanPrefix}new-${k}`, JSON.stringify({ k }))
          const rest = await collect(scanConnection, stream, all[k]!.context)
          const got = new Set(rest.map((item) => (item.data as DocumentData).id))
          const missing = ids.slice(k + 1).filter((id) => !got.has(id) && ids.indexOf(id) > k)
          expect(missing.filter((id) => ![0, 10, 30, 58].includes(ids.indexOf(id)))).toEqual([])
        }
      } finally {
        await scanConnection.close()
      }
    })

    it('stores fields with exact JSON text (rawJson) as that text, and reads numbers JSON.parse changes back exactly', async () => {
      const sinkPrefix = `${prefix}exact:`
      // A JSON column's text: a repeated key, digits past 2^53 and past a double, spacing.
      const column = '{"b":1,"a":2,"b":3,"n":12345678901234567890123,\n "x":1e400,"d":2.50}'
      const numbers =
        '{"id":9007199254740993,"inf":1e400,"tiny":-1e-400,"d":0.1000000000000000055511151231257827,"o":{"k":[12345678901234567890123]},"ok":2.5}'
      const docs: DocumentData[] = [
        {
          kind: 'document',
          id: 'col',
          content: { first: 1, j: JSON.parse(column), last: 'z' },
          rawJson: { j: column },
        },
        {
          kind: 'document',
          id: 'num',
          content: JSON.parse(numbers),
          rawJson: {
            id: '9007199254740993',
            inf: '1e400',
            tiny: '-1e-400',
            d: '0.1000000000000000055511151231257827',
            o: '{"k":[12345678901234567890123]}',
          },
        },
      ]
      const stream = { kind: 'document', prefix: sinkPrefix }
      expect(await connection.write(stream, docs, { signal: signal() })).toEqual({
        written: 2,
        failed: [],
      })
      // What Redis holds, as bytes: the column's text verbatim (on one line), the rest as written.
      expect(await admin.get(`${sinkPrefix}col`)).toBe(
        `{"first":1,"j":${column.replace('\n', ' ')},"last":"z"}`,
      )
      expect(await admin.get(`${sinkPrefix}num`)).toBe(numbers)
      // Read back, the numbers JSON.parse changes come with their text, so a copy is exact.
      // SCAN gives no order across pages (other keys share the database): sort by id.
      const items = (await collect(connection, stream))
        .map((item) => item.data as DocumentData)
        .sort((a, b) => a.id.localeCompare(b.id))
      expect(items.map((item) => [item.id, item.rawJson])).toEqual([
        ['col', { j: '{"b":3,"a":2,"n":12345678901234567890123,"x":1e400,"d":2.5}' }],
        ['num', docs[1]!.rawJson],
      ])
      expect(items.map((item) => item.content)).toEqual([
        JSON.parse((await admin.get(`${sinkPrefix}col`))!),
        JSON.parse(numbers),
      ])
      const copyPrefix = `${prefix}exact-copy:`
      await connection.write({ kind: 'document', prefix: copyPrefix }, items, { signal: signal() })
      expect(await admin.get(`${copyPrefix}num`)).toBe(numbers)
    })

    it('a bad document fails alone', async () => {
      const sinkPrefix = `${prefix}mixed:`
      const batch = [
        { kind: 'document', id: 'ok', content: { a: 1 } },
        { kind: 'document', id: '', content: { a: 2 } },
        { kind: 'document', id: 'array', content: [1, 2] as unknown as Record<string, never> },
        { kind: 'message', id: 'm', payload: new Uint8Array(1) },
      ] as Data[]
      const result = await connection.write({ kind: 'document', prefix: sinkPrefix }, batch, {
        signal: signal(),
      })
      expect(result.written).toBe(1)
      expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
        [1, 'data'],
        [2, 'data'],
        [3, 'data'],
      ])
    })
  })

  describe('connection failures', () => {
    it('connect to a dead port fails fast as transient', async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const port = (server.address() as { port: number }).port
      await new Promise<void>((resolve) => server.close(() => resolve()))
      const started = Date.now()
      const error = await errorOf(
        redisProvider
          .connect({ credentials: {}, params: { host: '127.0.0.1', port } })
          .then((c) => c.check()),
      )
      expect(error.kind).toBe('transient')
      expect(error.code).toBe('ECONNREFUSED')
      expect(Date.now() - started).toBeLessThan(2000)
    })

    it('connect to a server that never answers honours the abort signal', async () => {
      // Accepts TCP but never speaks RESP: ioredis waits for the HELLO reply.
      const sockets: Socket[] = []
      const server = createServer((socket) => sockets.push(socket))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const port = (server.address() as { port: number }).port
      try {
        const controller = new AbortController()
        setTimeout(() => controller.abort(), 200)
        const started = Date.now()
        const error = await redisProvider
          .connect(
            { credentials: {}, params: { host: '127.0.0.1', port } },
            { signal: controller.signal },
          )
          .then(
            () => undefined,
            (e: unknown) => e as Error,
          )
        expect(error?.name).toBe('AbortError')
        expect(Date.now() - started).toBeLessThan(2000)
        // Without an abort, the connect deadline (connectTimeoutMs) ends the wait as transient.
        const timedOut = await errorOf(
          redisProvider.connect({
            credentials: {},
            params: { host: '127.0.0.1', port, connectTimeoutMs: 300 },
          }),
        )
        expect(timedOut.kind).toBe('transient')
        expect(timedOut.code).toBe('ETIMEDOUT')
      } finally {
        for (const socket of sockets) socket.destroy()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    })

    it('check and read on a connection whose server went away are transient, not a hang', async () => {
      // A TCP proxy to the real server that can be taken away.
      const t = redisTarget()
      const sockets: Socket[] = []
      const proxy = createServer((inbound) => {
        const outbound = connect(t.port, t.host)
        sockets.push(inbound, outbound)
        inbound.pipe(outbound).pipe(inbound)
        inbound.on('error', () => outbound.destroy())
        outbound.on('error', () => inbound.destroy())
      })
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
      const port = (proxy.address() as { port: number }).port
      const input = redisInput()
      const viaProxy = await redisProvider.connect({
        credentials: input.credentials,
        params: { ...(input.params as object), port },
      })
      try {
        await viaProxy.check()
        proxy.close()
        for (const socket of sockets) socket.destroy()
        await new Promise((resolve) => setTimeout(resolve, 50))
        const started = Date.now()
        const error = await errorOf(viaProxy.check())
        expect(error.kind).toBe('transient')
        const readError = await errorOf(collect(viaProxy, { kind: 'stream', key: `${prefix}gone` }))
        expect(readError.kind).toBe('transient')
        expect(Date.now() - started).toBeLessThan(2000)
      } finally {
        await viaProxy.close()
      }
    })
  })

  it('uses an injected client and leaves it open on close', async () => {
    const t = redisTarget()
    const client = new Redis({
      host: t.host,
      port: t.port,
      lazyConnect: true,
      enableOfflineQueue: false,
    })
    try {
      const provider = createRedisProvider({ client })
      const injected = await provider.connect({ credentials: {}, params: {} })
      await injected.check()
      await injected.close()
      expect(client.status).toBe('ready')
      expect(await client.ping()).toBe('PONG')
    } finally {
      client.disconnect()
    }
  })

  it('discovers streams', async () => {
    const key = `${prefix}discover`
    await admin.xadd(key, '*', 'payload', 'x')
    const streams = await connection.discover({ signal: signal() })
    expect(streams).toContainEqual(
      expect.objectContaining({
        name: key,
        type: 'stream',
        data: 'message',
        stream: { kind: 'stream', key },
      }),
    )
  })
})
