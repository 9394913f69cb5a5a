import type { Static, TSchema } from '@sinclair/typebox'
import { abortReason, raceAbort } from './abort.js'
import {
  type Connection,
  type GuardedConnection,
  MAX_PARTITIONS,
  type PartitionPlan,
  type Provider,
  type ReadItem,
  type WriteFailure,
  type WriteResult,
} from './contract.js'
import type { Data, DataKind } from './data.js'
import { isAbortError, type Operation, ProviderError } from './errors.js'
import { Redactor } from './redact.js'

/** The pass-through formats a provider's source or sink declares (`wire`). */
export function wireFormats(provider: Provider, side: 'source' | 'sink'): readonly string[] {
  return provider.definition[side]?.wire ?? []
}

/** An abort stays an abort (redacted), so callers can tell cancellation from failure. */
export function keepAbort(error: unknown, redact: Redactor): Error | undefined {
  return isAbortError(error) && error instanceof Error ? redact.error(error) : undefined
}

function streamLabel(stream: unknown): string | undefined {
  if (stream === null || typeof stream !== 'object') return undefined
  const s = stream as Record<string, unknown>
  for (const key of [
    'name',
    'table',
    'collection',
    'prefix',
    'stream',
    'subject',
    'key',
    'path',
    'index',
    'label',
  ]) {
    const value = s[key]
    if (typeof value === 'string') return value
  }
  try {
    return JSON.stringify(stream)
  } catch {
    return undefined
  }
}

/**
 * Wrap a provider's connection with the runtime's guarantees: stream settings, resume
 * contexts and partition counts validated; items checked against the declared data kind;
 * every error classified, tagged with operation/stream/cursor and redacted (`fail`); aborts
 * kept as aborts; every operation refused once `close` has been called, which runs once.
 */
export function guardConnection<
  TStream extends TSchema,
  TContext extends TSchema,
  TSinkStream extends TSchema,
>(
  provider: Provider<any, any, TStream, TContext, TSinkStream>,
  connection: Connection<Static<TStream>, Static<TContext>, Static<TSinkStream>>,
  fail: (
    error: unknown,
    where: { operation: Operation; stream?: string | undefined; cursor?: unknown },
  ) => ProviderError,
  redact: Redactor = new Redactor([]),
): GuardedConnection<Static<TStream>, Static<TContext>, Static<TSinkStream>> {
  const id = provider.id
  let closing: Promise<void> | undefined
  const ensureOpen = (operation: Operation) => {
    if (closing)
      throw new ProviderError({
        kind: 'internal',
        providerId: id,
        operation,
        message: `${id} connection is closed`,
      })
  }
  const run = async <T>(
    operation: Operation,
    fn: () => Promise<T>,
    stream?: unknown,
  ): Promise<T> => {
    ensureOpen(operation)
    try {
      return await fn()
    } catch (error) {
      throw keepAbort(error, redact) ?? fail(error, { operation, stream: streamLabel(stream) })
    }
  }
  const checkBatchKinds = (
    stream: Static<TSinkStream>,
    batch: readonly Data[],
    wire: string | undefined,
  ) => {
    const expected = provider.sinkDataKind(stream)
    const failed: WriteFailure[] = []
    const accepted: { item: Data; index: number }[] = []
    batch.forEach((item, index) => {
      // Wire rows reach a sink only on writes that say so, in the format they name.
      const wireFormat = item?.kind === 'record' ? item.wire?.format : undefined
      if (wireFormat !== wire && (wireFormat !== undefined || item?.kind === 'record'))
        failed.push({
          index,
          error: new ProviderError({
            kind: 'data',
            providerId: id,
            operation: 'write',
            stream: streamLabel(stream),
            message:
              wireFormat === undefined
                ? `item ${index} is a decoded record in a write of ${JSON.stringify(wire)} rows`
                : `item ${index} holds ${JSON.stringify(wireFormat)} rows; this write ${wire === undefined ? 'takes decoded records' : `takes ${JSON.stringify(wire)}`}`,
          }),
        })
      else if (item?.kind === expected) accepted.push({ item, index })
      else
        failed.push({
          index,
          error: new ProviderError({
            kind: 'data',
            providerId: id,
            operation: 'write',
            stream: streamLabel(stream),
            message: `item ${index} is ${item?.kind === undefined ? 'not a data item' : `a ${item.kind}`}; this sink takes ${expected}`,
          }),
        })
    })
    return { failed, accepted }
  }
  const writeLike = async (
    operation: 'write' | 'delete',
    stream: unknown,
    call: (stream: Static<TSinkStream>) => Promise<WriteResult>,
  ) => {
    ensureOpen(operation)
    let settings: Static<TSinkStream>
    try {
      settings = provider.validateSinkStream(stream)
    } catch (error) {
      throw fail(error, { operation, stream: streamLabel(stream) })
    }
    try {
      const result = await call(settings)
      return {
        written: result.written,
        failed: result.failed.map((f) =>
          f.data === undefined
            ? { index: f.index, error: fail(f.error, { operation, stream: streamLabel(stream) }) }
            : {
                index: f.index,
                error: fail(f.error, { operation, stream: streamLabel(stream) }),
                data: f.data,
              },
        ),
      }
    } catch (error) {
      throw keepAbort(error, redact) ?? fail(error, { operation, stream: streamLabel(stream) })
    }
  }

  return {
    providerId: id,
    get closed() {
      return closing !== undefined
    },
    check: (options = {}) =>
      run('check', () =>
        // A check that hangs (a server that accepts but never answers) ends on abort.
        options.signal ? raceAbort(connection.check(), options.signal) : connection.check(),
      ),
    discover: (options = {}) =>
      run('discover', async () => {
        if (!connection.discover) {
          throw new ProviderError({
            kind: 'config',
            message: `provider ${id} does not support discover`,
          })
        }
        return connection.discover({ signal: options.signal ?? new AbortController().signal })
      }),
    read(stream, options) {
      const signal = options.signal
      return {
        [Symbol.asyncIterator]: () => {
          let cursor: unknown = options.after
          let inner: AsyncIterator<ReadItem<Static<TContext>>> | undefined
          let expected: DataKind | undefined
          const label = streamLabel(stream)
          // What a source yields is checked as cheaply as a write's items: the declared kind
          // and a context to resume from, so a provider bug never reaches a sink.
          const badItem = (
            value: ReadItem<Static<TContext>> | undefined,
          ): ProviderError | undefined => {
            const kind = (value?.data as Data | undefined)?.kind
            if (kind !== expected)
              return new ProviderError({
                kind: 'internal',
                providerId: id,
                operation: 'read',
                stream: label,
                cursor,
                message: `${id} yielded ${kind === undefined ? 'an item without data' : `a ${kind} item`} from a stream of ${expected} items`,
              })
            if (value!.context === undefined)
              return new ProviderError({
                kind: 'internal',
                providerId: id,
                operation: 'read',
                stream: label,
                cursor,
                message: `${id} yielded a ${kind} item without a context: a read could not resume after it`,
              })
            return undefined
          }
          const start = () => {
            ensureOpen('read')
            if (!connection.read) {
              throw new ProviderError({ kind: 'config', message: `provider ${id} cannot read` })
            }
            const settings = provider.validateStream(stream)
            expected = provider.sourceDataKind(settings)
            const after =
              options.after === undefined ? undefined : provider.validateContext(options.after)
            const wire = options.wire
            if (wire === undefined)
              return connection.read(settings, { after, signal })[Symbol.asyncIterator]()
            if (!wireFormats(provider, 'source').includes(wire.format))
              throw new ProviderError({
                kind: 'config',
                message: `provider ${id} cannot read as ${JSON.stringify(wire.format)}`,
              })
            return connection.read(settings, { after, signal, wire })[Symbol.asyncIterator]()
          }
          const stopInner = async () => {
            try {
              await inner?.return?.()
            } catch {}
          }
          const onError = async (error: unknown): Promise<never> => {
            // An aborted read ends with the abort, whatever the provider turned it into.
            if (signal.aborted) throw abortReason(signal)
            throw fail(error, { operation: 'read', stream: label, cursor })
          }
          const onResult = async (
            result: IteratorResult<ReadItem<Static<TContext>>>,
          ): Promise<IteratorResult<ReadItem<Static<TContext>>>> => {
            if (signal.aborted) {
              await stopInner()
              throw abortReason(signal)
            }
            if (!result.done) {
              const bad = badItem(result.value)
              if (bad) {
                // The consumer gets an error, not an item: it will not call return().
                await stopInner()
                throw bad
              }
              cursor = result.value.context
            }
            return result
          }
          const slowNext = async (): Promise<IteratorResult<ReadItem<Static<TContext>>>> => {
            try {
              if (signal.aborted) {
                // A for-await loop does not call return() after next() throws: stop the source here.
                await stopInner()
                throw abortReason(signal)
              }
              if (inner && closing) {
                await stopInner()
                ensureOpen('read')
              }
              inner ??= start()
              return await onResult(await inner.next())
            } catch (error) {
              return onError(error)
            }
          }
          return {
            next() {
              // The per-item path: one promise reaction, no extra async frame. Start, abort
              // and close take the slow path above.
              if (inner === undefined || closing || signal.aborted) return slowNext()
              let pending: Promise<IteratorResult<ReadItem<Static<TContext>>>>
              try {
                pending = inner.next()
              } catch (error) {
                return onError(error)
              }
              return pending.then((result) => {
                if (signal.aborted || result.done) return onResult(result)
                if (result.value?.data?.kind !== expected || result.value.context === undefined)
                  return onResult(result)
                cursor = result.value.context
                return result
              }, onError)
            },
            async return() {
              try {
                await inner?.return?.()
              } catch (error) {
                throw fail(error, { operation: 'read', stream: label, cursor })
              }
              return { done: true, value: undefined }
            },
          }
        },
      }
    },
    partition: (stream, options) =>
      run(
        'partition',
        async () => {
          const count = options?.count
          if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
            const message = `partition count must be an integer from 1 to ${MAX_PARTITIONS}, got ${JSON.stringify(count)}`
            throw new ProviderError({
              kind: 'config',
              message,
              issues: [{ path: '/count', rule: `integer 1..${MAX_PARTITIONS}`, message }],
            })
          }
          const settings = provider.validateStream(stream)
          if (count === 1) return { partitions: [settings] }
          if (!provider.capabilities.partition || !connection.partition)
            return {
              partitions: [settings],
              reason: `provider ${id} cannot split a stream into partitions: it is read as one`,
            }
          const plan = await connection.partition(settings, {
            count,
            signal: options.signal ?? new AbortController().signal,
          })
          const partitions = (plan as PartitionPlan | undefined)?.partitions
          if (!Array.isArray(partitions) || partitions.length < 1 || partitions.length > count)
            throw new ProviderError({
              kind: 'internal',
              message: `${id} partition returned ${Array.isArray(partitions) ? `${partitions.length} partitions` : 'no partition list'}; asked for at most ${count} (at least one)`,
            })
          const checked = partitions.map((partition, index) => {
            try {
              return provider.validateStream(partition)
            } catch (error) {
              throw new ProviderError({
                kind: 'internal',
                message: `${id} partition ${index} of ${partitions.length} is not valid stream settings: ${(error as Error).message}`,
                cause: error,
              })
            }
          })
          return plan.reason === undefined
            ? { partitions: checked }
            : { partitions: checked, reason: String(plan.reason) }
        },
        stream,
      ),
    write: (stream, batch, options) =>
      writeLike('write', stream, async (settings) => {
        if (!connection.write)
          throw new ProviderError({ kind: 'config', message: `provider ${id} cannot write` })
        const wire = options.wire
        if (wire !== undefined && !wireFormats(provider, 'sink').includes(wire))
          throw new ProviderError({
            kind: 'config',
            message: `provider ${id} cannot write ${JSON.stringify(wire)} rows as they are`,
          })
        const { failed, accepted } = checkBatchKinds(settings, batch, wire)
        if (accepted.length === 0) return { written: 0, failed }
        if (failed.length === 0) return connection.write(settings, batch, options)
        const result = await connection.write(
          settings,
          accepted.map((a) => a.item),
          options,
        )
        return {
          written: result.written,
          failed: [
            ...failed,
            ...result.failed.map((f) => {
              const original = accepted[f.index]
              if (!original) {
                throw new ProviderError({
                  kind: 'internal',
                  message: `connection reported a failure at index ${f.index} of a batch of ${accepted.length}`,
                })
              }
              return { ...f, index: original.index }
            }),
          ].sort((a, b) => a.index - b.index),
        }
      }),
    delete: (stream, ids, options) =>
      writeLike('delete', stream, async (settings) => {
        if (!connection.delete)
          throw new ProviderError({
            kind: 'config',
            message: `provider ${id} does not support delete`,
          })
        return connection.delete(settings, ids, options)
      }),
    describeStream: (stream, options = {}) =>
      run(
        'describe',
        async () => {
          if (!connection.describeStream)
            throw new ProviderError({
              kind: 'config',
              message: `provider ${id} cannot describe a stream's columns`,
            })
          return connection.describeStream(provider.validateStream(stream), {
            signal: options.signal ?? new AbortController().signal,
          })
        },
        stream,
      ),
    prepare: (stream, options = {}) =>
      run(
        'prepare',
        async () => {
          const settings = provider.validateSinkStream(stream)
          if (!connection.prepare) return { existed: true, actions: [] }
          return connection.prepare(settings, {
            signal: options.signal ?? new AbortController().signal,
            schema: options.schema,
            dryRun: options.dryRun,
          })
        },
        stream,
      ),
    readOffset: (stream, key, options = {}) =>
      run(
        'read',
        async () => {
          const settings = provider.validateSinkStream(stream)
          if (!connection.readOffset) return undefined
          return connection.readOffset(settings, key, {
            signal: options.signal ?? new AbortController().signal,
          })
        },
        stream,
      ),
    wireOffer: (stream, format, options = {}) =>
      run(
        'describe',
        async () => {
          const settings = provider.validateStream(stream)
          if (!wireFormats(provider, 'source').includes(format) || !connection.wireOffer)
            return { reason: `provider ${id} cannot read as ${JSON.stringify(format)}` }
          const offer = await connection.wireOffer(settings, format, {
            signal: options.signal ?? new AbortController().signal,
          })
          if ('reason' in offer) return { reason: String(offer.reason) }
          if (offer.format !== format)
            throw new ProviderError({
              kind: 'internal',
              message: `${id} offered ${JSON.stringify(offer.format)} when asked for ${JSON.stringify(format)}`,
            })
          return offer
        },
        stream,
      ),
    acceptWire: (stream, offer, options = {}) =>
      run(
        'prepare',
        async () => {
          const settings = provider.validateSinkStream(stream)
          if (!wireFormats(provider, 'sink').includes(offer.format) || !connection.acceptWire)
            return {
              accepted: false as const,
              reason: `provider ${id} cannot write ${JSON.stringify(offer.format)} as it is`,
            }
          const answer = await connection.acceptWire(settings, offer, {
            signal: options.signal ?? new AbortController().signal,
          })
          return answer.accepted === true
            ? { accepted: true as const }
            : { accepted: false as const, reason: String(answer.reason) }
        },
        stream,
      ),
    close() {
      // An async wrapper, so a close that throws synchronously still rejects the promise.
      closing ??= (async () => connection.close())().catch((error) => {
        throw fail(error, { operation: 'close' })
      })
      return closing
    },
  }
}
