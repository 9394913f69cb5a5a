import { addAbortSignal, type Readable } from 'node:stream'
import {
  type PartitionPlan,
  ProviderError,
  partitionPlan,
  quantileBounds,
  splitAtBounds,
  throwIfAborted,
} from '@nvisy/provider-core'
import type { MysqlClient } from './mysql-client.js'
import type { MysqlStream } from './mysql-schemas.js'
import { compileItemBuilder, planRead } from './mysql-source.js'
import { quoteString } from './mysql-values.js'

/** Up to this many rows (by the catalog's estimate) every key is read: the boundaries are exact. */
export const EXACT_ROWS = 50_000
/** About this many sampled keys place the boundaries of up to 1024 partitions well. */
export const SAMPLE_ROWS = 30_000
/** The most keys held while planning: beyond it every other one is dropped (they arrive sorted). */
export const MAX_KEYS = 100_000
const MIN_SAMPLE_PER_PARTITION = 20
const SAMPLE_ROUNDS = 4

type KeyTuple = (string | number | boolean)[]

/**
 * Split a table read into at most `count` key ranges of its cursor (the primary key, or the
 * declared cursor with the primary key appended), each holding about as many rows.
 *
 * The boundaries are quantiles of the cursor tuples in the server's own order (`ORDER BY` the
 * cursor: collations decide text keys, composite keys sort column by column): every key of a
 * table the catalog estimates small (`information_schema.TABLES.TABLE_ROWS`), or a
 * `RAND() < p` sample of a large one sized from that estimate, sampled again larger when the
 * stream's filter leaves too few. Quantiles follow rows, not values, so skewed keys split
 * evenly. The first range keeps the stream's lower bound and the last its upper one (none:
 * open-ended), so rows inserted while the partitions are read fall in exactly one of them.
 * Cursor columns must be NOT NULL.
 */
export async function partitionTable(
  client: MysqlClient,
  stream: MysqlStream,
  count: number,
  signal: AbortSignal,
): Promise<PartitionPlan<MysqlStream>> {
  const outer = await planRead(client, stream, signal)
  const cursorNames = outer.cursor.map((c) => c.name)
  for (const [i, column] of outer.cursor.entries()) {
    if (!column.nullable) continue
    const declared = stream.cursor?.findIndex((n) => n.toLowerCase() === column.name.toLowerCase())
    const path = `/stream/cursor/${declared !== undefined && declared >= 0 ? declared : i}`
    const message = `cursor column ${JSON.stringify(column.name)} of ${JSON.stringify(`${outer.info.database}.${outer.info.table}`)} is nullable: partitions split the cursor's key range and a NULL key belongs to none, so partitioned reads need NOT NULL cursor columns (the primary key, or declared NOT NULL columns)`
    throw new ProviderError({
      kind: 'config',
      providerId: 'mysql',
      message: `${path}: ${message}`,
      issues: [{ path, rule: 'NOT NULL', message }],
    })
  }
  // The cursor columns alone, selected and converted exactly as a read's contexts are.
  const plan = await planRead(client, { ...stream, columns: cursorNames }, signal)
  const buildItem = compileItemBuilder(plan, cursorNames)
  const toTuple = (row: unknown[]) => buildItem(row).context.values as KeyTuple

  const estimate = await client.withConnection(signal, async (connection) => {
    const [rows] = await connection.query({
      sql: `SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(plan.info.database)} AND TABLE_NAME = ${quoteString(plan.info.table)}`,
      rowsAsArray: true,
    })
    const value = (rows as unknown[][])[0]?.[0]
    return value === null || value === undefined ? undefined : Number(value)
  })
  let fraction =
    plan.info.type === 'view' || estimate === undefined || estimate <= EXACT_ROWS
      ? 1
      : SAMPLE_ROWS / estimate
  let keys: KeyTuple[] = []
  let matched = 0
  for (let round = 0; ; round++) {
    const conditions = [plan.filterSql, plan.rangeSql].filter((c): c is string => Boolean(c))
    if (fraction < 1) conditions.push(`RAND() < ${fraction.toFixed(8)}`)
    const where =
      conditions.length > 0 ? ` WHERE ${conditions.map((c) => `(${c})`).join(' AND ')}` : ''
    ;({ keys, rows: matched } = await readKeys(
      client,
      `${plan.selectSql}${where}${plan.orderSql}`,
      toTuple,
      signal,
    ))
    if (
      fraction >= 1 ||
      keys.length >= count * MIN_SAMPLE_PER_PARTITION ||
      round >= SAMPLE_ROUNDS - 1
    )
      break
    fraction = round === SAMPLE_ROUNDS - 2 ? 1 : Math.min(1, fraction * 10)
  }
  return rangesFromKeys(stream, keys, count, fraction >= 1 ? matched : undefined)
}

/**
 * The rows of a key query as tuples, streamed (mysql2 pauses the socket while this is
 * behind). At most `MAX_KEYS` are held: past that the kept keys are thinned to every other one
 * and only every `stride`-th row is kept, so they stay evenly spread over the rows.
 */
async function readKeys(
  client: MysqlClient,
  sql: string,
  toTuple: (row: unknown[]) => KeyTuple,
  signal: AbortSignal,
): Promise<{ keys: KeyTuple[]; rows: number }> {
  throwIfAborted(signal)
  const connection = await client.acquire(signal)
  let drained = false
  try {
    const raw = (connection as any).connection ?? connection
    const stream: Readable = raw.query({ sql, rowsAsArray: true }).stream({ highWaterMark: 512 })
    addAbortSignal(signal, stream)
    let keys: KeyTuple[] = []
    let rows = 0
    let stride = 1
    for await (const row of stream as AsyncIterable<unknown[]>) {
      if (rows++ % stride !== 0) continue
      keys.push(toTuple(row))
      if (keys.length >= MAX_KEYS) {
        keys = keys.filter((_, i) => i % 2 === 0)
        stride *= 2
      }
    }
    drained = true
    return { keys, rows }
  } finally {
    // A result set left half-read would poison the connection: close it instead.
    if (drained) connection.release()
    else connection.destroy()
  }
}

/** Ranges from sorted keys: boundary j is the last key of the j-th of `count` equal shares. */
function rangesFromKeys(
  stream: MysqlStream,
  keys: readonly KeyTuple[],
  count: number,
  rows: number | undefined,
): PartitionPlan<MysqlStream> {
  const what =
    rows === undefined
      ? `a sample of ${keys.length} rows`
      : `the stream has ${rows} row${rows === 1 ? '' : 's'}`
  if (keys.length === 0)
    return {
      partitions: [stream],
      reason:
        rows === undefined
          ? `${what}: one partition`
          : 'the stream has no rows: it is read as one partition',
    }
  return partitionPlan(splitAtBounds(stream, quantileBounds(keys, count)), count, what)
}
