import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import {
  type Data,
  type GuardedConnection,
  memoryLogger,
  ProviderError,
  type ReadItem,
} from '@nvisy/provider-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { readAll } from './read-all.js'
import { servicesRequired } from './services.js'
import type { ConformanceOptions } from './types.js'

const ABORT_DEADLINE_MS = 2_000

/** A JSON round trip: contexts are stored as JSON (checkpoints, NATS), so resume must work from one. */
function viaJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i)
}

function sorted(numbers: number[]): number[] {
  return [...numbers].sort((a, b) => a - b)
}

/** Every place a secret could hide in an error: message, stack, causes, fields, JSON form. */
function errorSurfaces(error: unknown, deep: boolean): string {
  const parts: string[] = []
  let current: unknown = error
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      parts.push(current.name, current.message, current.stack ?? '')
      for (const [key, value] of Object.entries(current)) {
        if (typeof value === 'string' || typeof value === 'number') parts.push(`${key}=${value}`)
      }
      if (ProviderError.isInstance(current)) parts.push(JSON.stringify(current.toJSON()))
      current = (current as { cause?: unknown }).cause
    } else {
      parts.push(typeof current === 'string' ? current : inspect(current, { depth: 4 }))
      current = undefined
    }
  }
  if (deep) parts.push(inspect(error, { depth: 8, showHidden: true }))
  return parts.join('\n')
}

/**
 * Register the conformance suite for one provider: the same Vitest tests for every provider,
 * so each proves the provider contract (docs/architecture.md, docs/adding-a-provider.md) against its real service.
 */
export function runProviderConformance<TStream, TSinkStream>(
  options: ConformanceOptions<TStream, TSinkStream>,
): void {
  const { provider, fixture } = options
  const seedCount = Math.max(4, options.seedCount ?? 25)
  const timeout = options.timeoutMs ?? 60_000
  const title = `${options.name}: provider conformance`
  if (options.skip) {
    // A skip reason is a missing service: in CI (NVISY_REQUIRE_SERVICES=1) that is a failure.
    if (servicesRequired())
      throw new Error(
        `NVISY_REQUIRE_SERVICES is set but ${options.name} would be skipped: ${options.skip}`,
      )
    describe.skip(`${title} (skipped: ${options.skip})`, () => {
      it('needs its service', () => {})
    })
    return
  }

  describe(title, () => {
    const open: GuardedConnection[] = []
    const connect = async (): Promise<GuardedConnection> => {
      const connection = await provider.connect(await options.input())
      open.push(connection)
      return connection
    }

    beforeAll(async () => {
      await fixture.setup?.()
    }, timeout)
    afterAll(async () => {
      await Promise.allSettled(open.map((c) => c.close()))
      await fixture.teardown?.()
    }, timeout)
    beforeEach(async () => {
      await fixture.clear()
    }, timeout)

    it('describes itself as JSON with consistent capabilities', () => {
      const description = viaJson(provider.describe())
      expect(description.id).toBe(provider.id)
      expect(description.specificationVersion).toBe('v1')
      expect(typeof description.version).toBe('string')
      expect(description.capabilities.read).toBe(provider.definition.source !== undefined)
      expect(description.capabilities.write).toBe(provider.definition.sink !== undefined)
      if (fixture.sink) expect(description.capabilities.write).toBe(true)
    })

    it(
      'check passes with valid credentials and params',
      async () => {
        const connection = await connect()
        await expect(connection.check()).resolves.toBeUndefined()
        await connection.close()
      },
      timeout,
    )

    it('rejects bad params with a config error naming the field', async () => {
      const error = await provider.connect(options.badParams.input).then(
        async (connection) => {
          await connection.close()
          return undefined
        },
        (e: unknown) => e,
      )
      expect(error, 'connect accepted params the schema should refuse').toBeDefined()
      expect(ProviderError.isInstance(error)).toBe(true)
      const providerError = error as ProviderError
      expect(providerError.kind).toBe('config')
      const paths = (providerError.issues ?? []).map((issue) => issue.path)
      expect(
        paths.some(
          (path) =>
            path === options.badParams.path || path.startsWith(`${options.badParams.path}/`),
        ),
      ).toBe(true)
      expect(providerError.message).toContain(options.badParams.path)
    })

    if (options.badCredentials) {
      const bad = options.badCredentials
      const expectedKind = bad.kind ?? 'auth'
      it(
        `check fails with refused credentials as ${expectedKind}, and no error or log holds the secret`,
        async () => {
          const canary = `nvisy-canary-${randomBytes(6).toString('hex')}`
          const input = await bad.input(canary)

          // Through the guarded connection, as the runtime sees it.
          const logger = memoryLogger()
          let connection: GuardedConnection | undefined
          const error = await provider
            .connect(input, { logger })
            .then(async (c) => {
              connection = c
              await c.check()
              return undefined
            })
            .catch((e: unknown) => e)
          // The read and write paths with the same refused credentials: whatever they
          // fail with, the secret stays out of it.
          const pathErrors: unknown[] = []
          if (connection && provider.capabilities.read) {
            pathErrors.push(
              await readAll(connection, fixture.stream, { limit: 1 }).catch((e: unknown) => e),
            )
          }
          if (connection && provider.capabilities.write && fixture.sink) {
            pathErrors.push(
              await connection
                .write(fixture.sink.stream, [fixture.sink.makeItem(0)], {
                  signal: new AbortController().signal,
                })
                .catch((e: unknown) => e),
            )
          }
          await connection?.close().catch(() => {})
          for (const pathError of pathErrors)
            expect(errorSurfaces(pathError, true)).not.toContain(canary)
          expect(error, 'check succeeded with refused credentials').toBeDefined()
          expect(ProviderError.isInstance(error), `not a ProviderError: ${String(error)}`).toBe(
            true,
          )
          expect((error as ProviderError).kind).toBe(expectedKind)
          expect(errorSurfaces(error, true)).not.toContain(canary)
          expect(JSON.stringify(logger.lines)).not.toContain(canary)

          // The provider's own code, without the runtime's redaction: a provider must not
          // rely on the safety net, which only finds the secret verbatim.
          const rawLogger = memoryLogger()
          let raw: Awaited<ReturnType<typeof provider.definition.connect>> | undefined
          const rawError = await Promise.resolve()
            .then(() => provider.validateInput(input))
            .then((validated) =>
              provider.definition.connect(validated, {
                signal: new AbortController().signal,
                logger: rawLogger,
              }),
            )
            .then(async (c) => {
              raw = c
              await c.check()
              return undefined
            })
            .catch((e: unknown) => e)
          await raw?.close().catch(() => {})
          expect(rawError, 'check succeeded with refused credentials').toBeDefined()
          expect(errorSurfaces(rawError, false)).not.toContain(canary)
          expect(
            JSON.stringify(rawLogger.lines, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
          ).not.toContain(canary)
        },
        timeout,
      )
    }

    it('close can be called twice', async () => {
      const connection = await connect()
      await connection.close()
      await expect(connection.close()).resolves.toBeUndefined()
      expect(connection.closed).toBe(true)
    })

    if (provider.capabilities.read) {
      const itemNumbers = (items: ReadItem[]) =>
        Promise.all(items.map((item) => fixture.itemNumber(item.data)))

      it(
        'reads every seeded item exactly once',
        async () => {
          await fixture.seed(0, seedCount)
          const connection = await connect()
          const items = await readAll(connection, fixture.stream)
          expect(sorted(await itemNumbers(items))).toEqual(range(0, seedCount))
          for (const item of items)
            expect(item.context, 'every item carries a context').not.toBeUndefined()
        },
        timeout,
      )

      it(
        'resumes after any item with exactly the items that followed it (no gap, no duplicate)',
        async () => {
          await fixture.seed(0, seedCount)
          const connection = await connect()
          const all = await readAll(connection, fixture.stream)
          const order = await itemNumbers(all)
          expect(order.length).toBe(seedCount)
          const positions = [...new Set([0, 1, Math.floor(seedCount / 2), seedCount - 2])]
          for (const k of positions) {
            // Stop after k + 1 items, as a crashed run would, then resume from the last one's context.
            const head = await readAll(connection, fixture.stream, { limit: k + 1 })
            expect(await itemNumbers(head)).toEqual(order.slice(0, k + 1))
            const rest = await readAll(connection, fixture.stream, {
              after: viaJson(head[k]!.context),
            })
            expect(await itemNumbers(rest), `resume after item at position ${k}`).toEqual(
              order.slice(k + 1),
            )
          }
        },
        timeout,
      )

      it(
        'resuming after the last item yields nothing',
        async () => {
          await fixture.seed(0, seedCount)
          const connection = await connect()
          const all = await readAll(connection, fixture.stream)
          const rest = await readAll(connection, fixture.stream, {
            after: viaJson(all[all.length - 1]!.context),
          })
          expect(await itemNumbers(rest)).toEqual([])
        },
        timeout,
      )

      if (
        provider.capabilities.incremental &&
        provider.isIncremental(provider.validateStream(fixture.stream))
      ) {
        it(
          'an incremental read from the last context returns only the new items',
          async () => {
            await fixture.seed(0, seedCount)
            const connection = await connect()
            const all = await readAll(connection, fixture.stream)
            const last = viaJson(all[all.length - 1]!.context)
            await fixture.seed(seedCount, 5)
            const fresh = await readAll(connection, fixture.stream, { after: last })
            expect(sorted(await itemNumbers(fresh))).toEqual(range(seedCount, 5))
          },
          timeout,
        )
      }

      if (provider.capabilities.partition) {
        const plan = async (connection: GuardedConnection, count: number) => {
          const result = viaJson(await connection.partition(fixture.stream, { count }))
          expect(result.partitions.length, `partition into ${count}`).toBeGreaterThanOrEqual(1)
          expect(result.partitions.length, `partition into ${count}`).toBeLessThanOrEqual(count)
          return result
        }
        /** Each partition's item numbers, read on its own (the partition settings as JSON, like a stored plan). */
        const readPartitions = async (connection: GuardedConnection, partitions: unknown[]) => {
          const parts: number[][] = []
          for (const partition of partitions)
            parts.push(await itemNumbers(await readAll(connection, viaJson(partition))))
          return parts
        }
        const expectExactCover = (parts: number[][], expected: number[]) => {
          const all = parts.flat()
          const seen = new Map<number, number>()
          parts.forEach((part, p) => {
            for (const n of part) {
              expect(
                seen.get(n),
                `item ${n} is read by partition ${seen.get(n)} and partition ${p}`,
              ).toBeUndefined()
              seen.set(n, p)
            }
          })
          expect(sorted(all), 'the partitions together read exactly the stream').toEqual(
            sorted(expected),
          )
        }

        it(
          'partitions are disjoint and together read exactly what the stream reads',
          async () => {
            await fixture.seed(0, seedCount)
            const connection = await connect()
            const whole = await itemNumbers(await readAll(connection, fixture.stream))
            expect(sorted(whole)).toEqual(range(0, seedCount))
            for (const count of [2, 3, 4]) {
              const { partitions } = await plan(connection, count)
              expect(
                partitions.length,
                `a source that declares partition splits ${seedCount} items into more than one of ${count} partitions`,
              ).toBeGreaterThan(1)
              expectExactCover(await readPartitions(connection, partitions), whole)
            }
          },
          timeout,
        )

        it(
          'each partition resumes after any of its items with exactly the rest of it',
          async () => {
            await fixture.seed(0, seedCount)
            const connection = await connect()
            const { partitions } = await plan(connection, 3)
            for (const [p, raw] of partitions.entries()) {
              const partition = viaJson(raw)
              const all = await readAll(connection, partition)
              const order = await itemNumbers(all)
              const positions = [...new Set([0, Math.floor(order.length / 2), order.length - 1])]
              for (const k of positions.filter((k) => k >= 0 && k < order.length)) {
                const head = await readAll(connection, partition, { limit: k + 1 })
                expect(await itemNumbers(head)).toEqual(order.slice(0, k + 1))
                const rest = await readAll(connection, partition, {
                  after: viaJson(head[k]!.context),
                })
                expect(
                  await itemNumbers(rest),
                  `partition ${p}: resume after its item at position ${k}`,
                ).toEqual(order.slice(k + 1))
              }
            }
          },
          timeout,
        )

        it(
          'items added after the partitions were planned are read once, by exactly one partition',
          async () => {
            await fixture.seed(0, seedCount)
            const connection = await connect()
            const { partitions } = await plan(connection, 4)
            await fixture.seed(seedCount, 5)
            expectExactCover(await readPartitions(connection, partitions), range(0, seedCount + 5))
          },
          timeout,
        )

        it(
          'fewer items than partitions, and an empty stream, are still covered exactly',
          async () => {
            const connection = await connect()
            const empty = await plan(connection, 4)
            expectExactCover(await readPartitions(connection, empty.partitions), [])
            await fixture.seed(0, 3)
            const few = await plan(connection, 8)
            expect(few.partitions.length).toBeLessThanOrEqual(8)
            expectExactCover(await readPartitions(connection, few.partitions), range(0, 3))
          },
          timeout,
        )
      }

      it(
        'abort stops a read promptly',
        async () => {
          await fixture.seed(0, seedCount)
          const connection = await connect()
          const controller = new AbortController()
          const iterator = connection
            .read(fixture.stream, { signal: controller.signal })
            [Symbol.asyncIterator]()
          const first = await iterator.next()
          expect(first.done).toBe(false)
          // Abort while the next read is in flight: the provider itself must honour the signal.
          const pending = iterator.next()
          controller.abort()
          let timer: NodeJS.Timeout | undefined
          const deadline = new Promise<'deadline'>((resolve) => {
            timer = setTimeout(resolve, ABORT_DEADLINE_MS, 'deadline')
          })
          const outcome = await Promise.race([
            pending.then(
              (result) => ({ result }),
              (error: unknown) => ({ error }),
            ),
            deadline,
          ])
          clearTimeout(timer)
          expect(outcome, `read did not stop within ${ABORT_DEADLINE_MS} ms of abort`).not.toBe(
            'deadline',
          )
          // Either the read rejected with an AbortError, or it had the item already and the next call rejects.
          if (typeof outcome === 'object' && 'error' in outcome) {
            expect((outcome.error as Error).name).toBe('AbortError')
          } else {
            await expect(iterator.next()).rejects.toMatchObject({ name: 'AbortError' })
          }
          const afterAbort = await readAll(connection, fixture.stream, { limit: 1 })
          expect(afterAbort.length, 'the connection still reads after an aborted read').toBe(1)
        },
        timeout,
      )
    }

    const sink = fixture.sink
    if (provider.capabilities.write && sink) {
      const write = async (connection: GuardedConnection, batch: Data[]) =>
        connection.write(sink.stream, batch, { signal: new AbortController().signal })

      it(
        'writes a batch and stores every item',
        async () => {
          const connection = await connect()
          const result = await write(
            connection,
            range(0, 10).map((i) => sink.makeItem(i)),
          )
          expect(result.failed).toEqual([])
          expect(result.written).toBe(10)
          expect(sorted(await sink.storedItems())).toEqual(range(0, 10))
        },
        timeout,
      )

      it(
        'writing the same batch twice leaves one copy of each item',
        async () => {
          const connection = await connect()
          const batch = () => range(0, 10).map((i) => sink.makeItem(i))
          const first = await write(connection, batch())
          const second = await write(connection, batch())
          expect(first.failed).toEqual([])
          expect(second.failed).toEqual([])
          expect(sorted(await sink.storedItems())).toEqual(range(0, 10))
        },
        timeout,
      )

      it(
        'a bad item in a batch fails alone with a data error',
        async () => {
          const connection = await connect()
          const batch = [sink.makeItem(0), sink.makeItem(1), sink.makeBadItem(), sink.makeItem(3)]
          const result = await write(connection, batch)
          expect(result.failed.map((f) => f.index)).toEqual([2])
          expect(result.failed[0]!.error.kind).toBe('data')
          expect(result.written).toBe(3)
          expect(sorted(await sink.storedItems())).toEqual([0, 1, 3])
        },
        timeout,
      )
    }
  })
}
