// The guard around batches of rows (`wire`): a provider is asked for a format only when it
// lists it, a sink never receives wire rows it did not accept (nor decoded records in a wire
// write), and a refused row of a batch keeps its record through the guard.
import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import { connected, readAll, record, rejection } from './__fixtures__/acme-provider.js'
import { type ReadOptions, SPECIFICATION_VERSION, type WriteOptions } from './contract.js'
import { COLUMNS_WIRE, type Data } from './data.js'
import { defineProvider } from './define-provider.js'
import { ProviderError } from './errors.js'

const signal = new AbortController().signal

function batch(rows: number): Data {
  return {
    kind: 'record',
    values: {},
    wire: {
      format: COLUMNS_WIRE,
      columns: ['id'],
      rows,
      values: [Array.from({ length: rows }, (_, i) => i)],
    },
  }
}

function wireProvider() {
  const calls = {
    reads: [] as ReadOptions[],
    writes: [] as { batch: readonly Data[]; options: WriteOptions }[],
  }
  const provider = defineProvider({
    id: 'wire-db',
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: Type.Object({}),
    params: Type.Object({}),
    source: {
      data: 'record',
      stream: Type.Object({ table: Type.String() }),
      context: Type.Object({ id: Type.Integer() }),
      ordering: 'id',
      wire: [COLUMNS_WIRE],
    },
    sink: {
      data: 'record',
      stream: Type.Object({ table: Type.String() }),
      idempotentBy: 'id',
      wire: [COLUMNS_WIRE],
    },
    async connect() {
      return {
        async check() {},
        async *read(_stream, options) {
          calls.reads.push(options)
          yield { data: batch(2), context: { id: 2 } }
        },
        async write(_stream, items, options) {
          calls.writes.push({ batch: items, options })
          return {
            written: 1,
            failed: [
              {
                index: 0,
                error: new ProviderError({ kind: 'data', message: 'row 1 refused' }),
                data: { kind: 'record', values: { id: 1 } },
              },
            ],
          }
        },
        async wireOffer(_stream, format) {
          return format === COLUMNS_WIRE
            ? {
                format: 'something-else',
                columns: ['id'],
                schema: { system: 'x', columns: [], primaryKey: [] },
              }
            : { reason: 'never' }
        },
        async acceptWire() {
          return { accepted: true as const }
        },
        async close() {},
      }
    },
  })
  return { provider, calls }
}

describe('guarded connection: batches of rows', () => {
  it('asks a source for a format only when it lists it', async () => {
    const { provider, calls } = wireProvider()
    const connection = await provider.connect({ credentials: {}, params: {} })
    const wire = { format: COLUMNS_WIRE, maxRows: 10, maxBytes: 1000 }
    const items = await readAll(connection.read({ table: 't' }, { signal, wire }))
    expect(items).toHaveLength(1)
    expect(calls.reads[0]?.wire).toEqual(wire)
    const error = await rejection(
      readAll(connection.read({ table: 't' }, { signal, wire: { ...wire, format: 'other-text' } })),
    )
    expect(error.kind).toBe('config')
    expect(error.message).toContain('cannot read as "other-text"')
    expect(calls.reads).toHaveLength(1)
    // A provider without wire formats says why instead of being asked.
    const { connection: plain } = await connected()
    expect(await plain.wireOffer({ table: 'users' }, COLUMNS_WIRE)).toEqual({
      reason: 'provider acme-db cannot read as "nvisy-columns"',
    })
    expect(
      await plain.acceptWire(
        { table: 'users' },
        { format: COLUMNS_WIRE, columns: [], schema: { system: 'x', columns: [], primaryKey: [] } },
      ),
    ).toEqual({
      accepted: false,
      reason: 'provider acme-db cannot write "nvisy-columns" as it is',
    })
  })

  it('an offer in another format than asked is a provider bug (internal)', async () => {
    const { provider } = wireProvider()
    const connection = await provider.connect({ credentials: {}, params: {} })
    const error = await rejection(connection.wireOffer({ table: 't' }, COLUMNS_WIRE))
    expect(error.kind).toBe('internal')
    expect(error.message).toContain('offered "something-else" when asked for "nvisy-columns"')
  })

  it('a sink gets wire rows only in a write that says so, and a refused row keeps its record', async () => {
    const { provider, calls } = wireProvider()
    const connection = await provider.connect({ credentials: {}, params: {} })
    // Wire rows in a plain write: refused item by item, the connection never sees them.
    const plain = await connection.write({ table: 't' }, [batch(3)], { signal })
    expect(plain.written).toBe(0)
    expect(plain.failed[0]?.error.message).toContain(
      'holds "nvisy-columns" rows; this write takes decoded records',
    )
    expect(calls.writes).toHaveLength(0)
    // A decoded record in a wire write is refused alone; the batch goes on.
    const mixed = await connection.write({ table: 't' }, [record(1), batch(2)], {
      signal,
      wire: COLUMNS_WIRE,
    })
    expect(calls.writes).toHaveLength(1)
    expect(calls.writes[0]!.batch).toHaveLength(1)
    expect(mixed.failed.map((f) => [f.index, f.data])).toEqual([
      [0, undefined],
      [1, { kind: 'record', values: { id: 1 } }],
    ])
    expect(mixed.failed[0]!.error.message).toContain(
      'is a decoded record in a write of "nvisy-columns" rows',
    )
    // A write in a format the sink does not list fails before reaching it.
    const error = await rejection(
      connection.write({ table: 't' }, [batch(1)], { signal, wire: 'other-text' }),
    )
    expect(error.kind).toBe('config')
    expect(calls.writes).toHaveLength(1)
  })
})
