import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import {
  API_TOKEN,
  CONNECTION_URL,
  connected,
  expectNoSecret,
  PASSWORD,
  readAll,
  record,
  rejection,
  URL_PASSWORD,
  urlInput,
} from './__fixtures__/acme-provider.js'
import { SPECIFICATION_VERSION } from './contract.js'
import type { Data } from './data.js'
import { defineProvider } from './define-provider.js'
import { ProviderError } from './errors.js'
import { REDACTED } from './redact.js'

describe('guarded connection', () => {
  it('check, discover, read, write and delete reach the connection', async () => {
    const { connection, inner } = await connected()
    expect(connection.providerId).toBe('acme-db')
    await connection.check()
    expect(await connection.discover()).toEqual([
      { name: 'users', type: 'table', data: 'record', stream: { table: 'users' } },
    ])
    const items = await readAll(
      connection.read({ table: 'users' }, { signal: new AbortController().signal }),
    )
    expect(items.map((i) => i.context)).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 3 },
      { id: 4 },
      { id: 5 },
    ])
    expect(inner.readCalls[0]).toEqual({
      stream: { table: 'users', batchSize: 100 },
      after: undefined,
    })
    const result = await connection.write({ table: 'users' }, [record(1)], {
      signal: new AbortController().signal,
    })
    expect(result).toEqual({ written: 1, failed: [] })
    expect(
      await connection.delete({ table: 'users' }, ['1', '2'], {
        signal: new AbortController().signal,
      }),
    ).toEqual({ written: 2, failed: [] })
  })

  it('resumes a read after a validated context', async () => {
    const { connection, inner } = await connected()
    const items = await readAll(
      connection.read(
        { table: 'users' },
        { after: { id: 3 }, signal: new AbortController().signal },
      ),
    )
    expect(items.map((i) => i.context)).toEqual([{ id: 4 }, { id: 5 }])
    expect(inner.readCalls[0]!.after).toEqual({ id: 3 })
  })

  it('validates stream settings and the resume context before reading', async () => {
    const { connection, inner } = await connected()
    const signal = new AbortController().signal
    const badStream = await rejection(
      readAll(connection.read({ table: '', extra: true } as any, { signal })),
    )
    expect(badStream.kind).toBe('config')
    expect(badStream.operation).toBe('read')
    expect(badStream.providerId).toBe('acme-db')
    expect(badStream.issues!.map((i) => `${i.path} ${i.rule}`)).toEqual(
      expect.arrayContaining(['/stream/table minLength', '/stream/extra additionalProperties']),
    )
    const badContext = await rejection(
      readAll(connection.read({ table: 'users' }, { after: { id: 'x' } as any, signal })),
    )
    expect(badContext.kind).toBe('config')
    expect(badContext.issues!.map((i) => `${i.path} ${i.rule}`)).toEqual(['/after/id type'])
    const badSink = await rejection(connection.write({ tbl: 'x' } as any, [record(1)], { signal }))
    expect(badSink.kind).toBe('config')
    expect(badSink.operation).toBe('write')
    expect(badSink.issues!.map((i) => i.path)).toEqual(
      expect.arrayContaining(['/stream/table', '/stream/tbl']),
    )
    expect(inner.readCalls).toHaveLength(0)
    expect(inner.writes).toHaveLength(0)
  })

  it('classifies a read error and tags it with stream, operation and the last yielded cursor, without secrets', async () => {
    const { connection, inner } = await connected(urlInput)
    inner.readError = {
      afterId: 2,
      error: Object.assign(
        new Error(`socket hang up talking to ${CONNECTION_URL} as ${URL_PASSWORD}`),
        {
          code: 'ECONNRESET',
          client: { connectionString: CONNECTION_URL },
        },
      ),
    }
    const seen: unknown[] = []
    const error = await rejection(
      (async () => {
        for await (const item of connection.read(
          { table: 'users' },
          { signal: new AbortController().signal },
        ))
          seen.push(item.context)
      })(),
    )
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(error.kind).toBe('transient')
    expect(error.providerId).toBe('acme-db')
    expect(error.operation).toBe('read')
    expect(error.stream).toBe('users')
    expect(error.cursor).toEqual({ id: 2 })
    expect(error.code).toBe('ECONNRESET')
    expect(error.message).toContain(REDACTED)
    expectNoSecret(error)
    expect((error.cause as Record<string, unknown>).client).toBeUndefined()
  })

  it('uses the resume context as the cursor when the read fails before its first item', async () => {
    const { connection, inner } = await connected()
    inner.rows = [1, 2, 3, 4, 5]
    inner.onRead = () => {
      throw Object.assign(new Error('duplicate'), { code: '23505' })
    }
    const error = await rejection(
      readAll(
        connection.read(
          { table: 'users' },
          { after: { id: 3 }, signal: new AbortController().signal },
        ),
      ),
    )
    expect(error.kind).toBe('data')
    expect(error.cursor).toEqual({ id: 3 })
  })

  it('redacts secrets from the errors of check, discover and close, keeping the classified kind', async () => {
    const { connection, inner } = await connected()
    inner.checkError = Object.assign(new Error(`auth failed: ${PASSWORD}`), { code: '28P01' })
    const checkError = await rejection(connection.check())
    expect(checkError.kind).toBe('auth')
    expect(checkError.operation).toBe('check')
    expectNoSecret(checkError)

    inner.checkError = new ProviderError({
      kind: 'rate_limited',
      message: `limited token ${API_TOKEN}`,
      retryAfterMs: 1000,
    })
    const limited = await rejection(connection.check())
    expect(limited.kind).toBe('rate_limited')
    expect(limited.retryAfterMs).toBe(1000)
    expect(limited.providerId).toBe('acme-db')
    expectNoSecret(limited)

    inner.checkError = `thrown string with ${PASSWORD}`
    const stringError = await rejection(connection.check())
    expect(stringError.kind).toBe('internal')
    expectNoSecret(stringError)

    inner.closeError = new Error(`close failed ${PASSWORD}`)
    const closeError = await rejection(connection.close())
    expect(closeError.operation).toBe('close')
    expectNoSecret(closeError)
  })

  it('write: items of the wrong data kind fail alone, the rest reach the connection with remapped indexes', async () => {
    const { connection, inner } = await connected()
    const doc: Data = { kind: 'document', id: 'd1', content: {} }
    const message: Data = { kind: 'message', id: 'm1', payload: new Uint8Array() }
    const batch: Data[] = [record(0), doc, record(2), message, record(4), record(5)]
    // The connection fails its own item 2, which is the batch's item 4.
    inner.writeResult = (accepted) => ({
      written: accepted.length - 1,
      failed: [
        { index: 2, error: Object.assign(new Error('duplicate key'), { code: '23505' }) as any },
      ],
    })
    const result = await connection.write({ table: 'users' }, batch, {
      signal: new AbortController().signal,
    })
    expect(inner.writes).toHaveLength(1)
    expect(inner.writes[0]!.batch).toEqual([record(0), record(2), record(4), record(5)])
    expect(result.written).toBe(3)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [3, 'data'],
      [4, 'data'],
    ])
    for (const failure of result.failed) {
      expect(ProviderError.isInstance(failure.error)).toBe(true)
      expect(failure.error.providerId).toBe('acme-db')
      expect(failure.error.operation).toBe('write')
      expect(failure.error.stream).toBe('users')
    }
    expect(result.failed[0]!.error.message).toContain('item 1')
    expect(result.failed[0]!.error.message).toContain('document')
    expect(result.failed[2]!.error.code).toBe('23505')
  })

  it('write: a batch with no item of the right kind never reaches the connection', async () => {
    const { connection, inner } = await connected()
    const result = await connection.write(
      { table: 'users' },
      [{ kind: 'document', id: 'd', content: {} }, null as any],
      {
        signal: new AbortController().signal,
      },
    )
    expect(inner.writes).toHaveLength(0)
    expect(result.written).toBe(0)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [0, 'data'],
      [1, 'data'],
    ])
    expect(
      await connection.write({ table: 'users' }, [], { signal: new AbortController().signal }),
    ).toEqual({ written: 0, failed: [] })
  })

  it('write: a whole-batch failure is classified and redacted', async () => {
    const { connection, inner } = await connected()
    inner.writeResult = () => {
      throw Object.assign(new Error(`auth expired for ${PASSWORD}`), { code: '28P01' })
    }
    const error = await rejection(
      connection.write({ table: 'users' }, [record(1)], { signal: new AbortController().signal }),
    )
    expect(error.kind).toBe('auth')
    expect(error.operation).toBe('write')
    expect(error.stream).toBe('users')
    expectNoSecret(error)
  })

  it('closes the connection once, even when close is called twice', async () => {
    const { connection, inner } = await connected()
    expect(connection.closed).toBe(false)
    const first = connection.close()
    const second = connection.close()
    await Promise.all([first, second])
    await connection.close()
    expect(inner.closeCalls).toBe(1)
    expect(connection.closed).toBe(true)
  })

  it('rejects a close that throws synchronously as a classified error', async () => {
    const { connection, inner } = await connected()
    inner.close = (() => {
      throw new Error(`sync close failure ${PASSWORD}`)
    }) as any
    const error = await rejection(connection.close())
    expect(error.operation).toBe('close')
    expectNoSecret(error)
  })

  it('fails every operation after close', async () => {
    const { connection, inner } = await connected()
    await connection.close()
    const signal = new AbortController().signal
    for (const promise of [
      connection.check(),
      connection.discover(),
      readAll(connection.read({ table: 'users' }, { signal })),
      connection.write({ table: 'users' }, [record(1)], { signal }),
      connection.delete({ table: 'users' }, ['1'], { signal }),
    ]) {
      const error = await rejection(promise)
      expect(error.message).toContain('closed')
      expect(error.providerId).toBe('acme-db')
    }
    expect(inner.readCalls).toHaveLength(0)
    expect(inner.writes).toHaveLength(0)
  })

  it('fails a read in progress once the connection is closed, and stops the inner read', async () => {
    const { connection, inner } = await connected()
    const iterator = connection
      .read({ table: 'users' }, { signal: new AbortController().signal })
      [Symbol.asyncIterator]()
    expect((await iterator.next()).value.context).toEqual({ id: 1 })
    await connection.close()
    const error = await rejection(iterator.next())
    expect(error.message).toContain('closed')
    expect(inner.readReturned).toBe(1)
  })

  it('ends a read with an AbortError when aborted between items, and stops the inner read', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read({ table: 'users' }, { signal: controller.signal })) {
        seen.push(item.context)
        if (seen.length === 2) controller.abort()
      }
    })().catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('ends a read when the signal aborts while the inner read is producing an item', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    inner.onRead = (id) => {
      if (id === 3) controller.abort()
    }
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read({ table: 'users' }, { signal: controller.signal }))
        seen.push(item.context)
    })().catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(ProviderError.isInstance(error)).toBe(false)
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('does not start a read whose signal is already aborted', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    controller.abort()
    const error = await readAll(
      connection.read({ table: 'users' }, { signal: controller.signal }),
    ).catch((e) => e)
    expect(error.name).toBe('AbortError')
    expect(inner.readCalls).toHaveLength(0)
  })

  it('keeps an abort an abort in check and write', async () => {
    const { connection, inner } = await connected()
    const controller = new AbortController()
    controller.abort()
    inner.checkError = controller.signal.reason
    const checkError = await connection.check().catch((e) => e)
    expect(checkError.name).toBe('AbortError')
    expect(ProviderError.isInstance(checkError)).toBe(false)
    inner.writeResult = () => {
      throw controller.signal.reason
    }
    const writeError = await connection
      .write({ table: 'users' }, [record(1)], { signal: controller.signal })
      .catch((e) => e)
    expect(writeError.name).toBe('AbortError')
  })

  it.each([
    [
      'an item of another kind',
      { data: { kind: 'document', id: 'x', content: {} }, context: { id: 3 } },
      /acme-db yielded a document item from a stream of record items/,
    ],
    ['an item without data', { context: { id: 3 } }, /acme-db yielded an item without data/],
    [
      'an item without a context',
      { data: record(3) },
      /yielded a record item without a context: a read could not resume/,
    ],
  ])('fails a read whose source yields %s, as internal, and stops the inner read', async (_what, bad, message) => {
    const { connection, inner } = await connected()
    inner.itemFor = (id) => (id === 3 ? bad : undefined)
    const seen: unknown[] = []
    const error = await (async () => {
      for await (const item of connection.read(
        { table: 'users' },
        { signal: new AbortController().signal },
      ))
        seen.push(item.context)
    })().catch((e) => e)
    expect(ProviderError.isInstance(error)).toBe(true)
    expect(error.kind).toBe('internal')
    expect(error.message).toMatch(message)
    expect(error.cursor).toEqual({ id: 2 })
    expect(seen).toEqual([{ id: 1 }, { id: 2 }])
    expect(inner.readReturned).toBe(1)
  })

  it('fails the first item too when it is of the wrong kind (the slow path)', async () => {
    const { connection, inner } = await connected()
    inner.itemFor = () => ({
      data: { kind: 'blob', key: 'k', body: new Uint8Array() },
      context: { id: 1 },
    })
    const error = await (async () => {
      for await (const _ of connection.read(
        { table: 'users' },
        { signal: new AbortController().signal },
      )) {
      }
    })().catch((e) => e)
    expect(error.kind).toBe('internal')
    expect(error.message).toMatch(/yielded a blob item from a stream of record items/)
    expect(inner.readReturned).toBe(1)
  })

  it('ends a check that never answers when its signal aborts', async () => {
    const { connection, inner } = await connected()
    inner.checkHangs = true
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 20)
    const error = await connection.check({ signal: controller.signal }).catch((e) => e)
    expect(error.name).toBe('AbortError')
  })

  it('stops the inner read when the consumer breaks early', async () => {
    const { connection, inner } = await connected()
    for await (const item of connection.read(
      { table: 'users' },
      { signal: new AbortController().signal },
    )) {
      expect(item.context).toEqual({ id: 1 })
      break
    }
    expect(inner.readReturned).toBe(1)
  })

  it('reports missing optional operations as config errors', async () => {
    const provider = defineProvider({
      id: 'minimal',
      version: '1.0.0',
      specificationVersion: SPECIFICATION_VERSION,
      credentials: Type.Object({}),
      params: Type.Object({}),
      source: {
        data: 'record',
        stream: Type.Object({}),
        context: Type.Object({}),
        ordering: 'none',
      },
      sink: { data: 'record', stream: Type.Object({}), idempotentBy: 'none' },
      connect: async () => ({ check: async () => {}, close: async () => {} }),
    })
    const connection = await provider.connect({ credentials: {}, params: {} })
    const signal = new AbortController().signal
    for (const promise of [
      connection.discover(),
      readAll(connection.read({}, { signal })),
      connection.write({}, [record(1)], { signal }),
      connection.delete({}, ['1'], { signal }),
    ]) {
      const error = await rejection(promise)
      expect(error.kind).toBe('config')
      expect(error.providerId).toBe('minimal')
    }
  })
})
