import {
  type PartitionPlan,
  partitionPlan,
  quantileBounds,
  raceAbort,
  splitAtBounds,
} from '@nvisy/provider-core'
import type { PoolClient } from 'pg'
import Cursor from 'pg-cursor'
import { describeTable, qualifiedName, quoteIdent, tableNotFound } from './postgres-catalog.js'
import type { PostgresContext, PostgresRange, PostgresStream } from './postgres-schemas.js'
import {
  compileRowBuilder,
  configError,
  cursorColumns,
  planRead,
  type SourceDeps,
  TEXT_TYPES,
  whereClauses,
} from './postgres-source.js'

/** Below this size (in pages of the table) every key is read: the boundaries are exact. */
export const EXACT_PAGES = 256
/** About this many sampled keys are enough to place the boundaries of up to 1024 partitions well. */
export const SAMPLE_ROWS = 30_000
/** A sample with fewer keys than this per partition is taken again, larger. */
const MIN_SAMPLE_PER_PARTITION = 20
const SAMPLE_ROUNDS = 4

type CursorTuple = (string | number)[]

interface TableStats {
  relkind: string
  rows: number
  pages: number
}

const STATS_SQL = `
SELECT c.relkind::text AS relkind,
  (CASE WHEN c.relkind = 'p'
    THEN (SELECT COALESCE(sum(GREATEST(k.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t
          JOIN pg_class k ON k.oid = t.relid WHERE t.isleaf)
    ELSE GREATEST(c.reltuples, 0) END)::float8 AS rows,
  (CASE WHEN c.relkind = 'p'
    THEN (SELECT COALESCE(sum(pg_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
    ELSE pg_relation_size(c.oid) END)::float8 / current_setting('block_size')::float8 AS pages
FROM pg_class c WHERE c.oid = $1::regclass`

/**
 * Split a table read into at most `count` key ranges of its cursor (the primary key, or the
 * declared cursor with the primary key appended), each holding about as many rows.
 *
 * The boundaries are quantiles of the cursor tuples, ordered by PostgreSQL itself (so text
 * keys split in their collation's order, composite keys in row order): every key of a small
 * table, or a `TABLESAMPLE SYSTEM` sample of a large one sized from the catalog's statistics
 * (`reltuples`, else the table's pages), with the stream's filter and range applied. Quantiles
 * follow the rows, not the key values, so a skewed key (a gap of a billion ids, one tenant
 * holding most rows of a composite key) still splits evenly. The first range keeps the
 * stream's lower bound and the last its upper one (none: open-ended), so rows inserted while
 * the partitions are read fall in exactly one of them. Cursor columns must be NOT NULL.
 */
export async function partitionTable(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  count: number,
  signal: AbortSignal,
): Promise<PartitionPlan<PostgresStream>> {
  const client = await raceAbort(deps.acquire(), signal)
  let broken = false
  try {
    const table = await raceAbort(describeTable(client, schema, stream.table), signal)
    if (!table) throw tableNotFound(schema, stream.table)
    const cursorNames = cursorColumns(table, stream)
    for (const [i, name] of cursorNames.entries()) {
      const column = table.byName.get(name)!
      if (!column.nullable) continue
      const declared = stream.cursor?.indexOf(name) ?? -1
      const view = table.kind === 'view' || table.kind === 'materialized view'
      throw configError(
        `cursor column ${JSON.stringify(name)} of ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)} is nullable${view ? ` (a ${table.kind} declares no column NOT NULL)` : ''}: partitions split the cursor's key range and a NULL key belongs to none, so partitioned reads need NOT NULL cursor columns (the primary key, or declared NOT NULL columns)`,
        declared >= 0 ? `/stream/cursor/${declared}` : `/stream/cursor/${i}`,
      )
    }
    const plan = planRead(table, { ...stream, columns: cursorNames }, undefined)
    const buildItem = compileRowBuilder(plan)
    const toTuple = (row: (string | null)[]): CursorTuple =>
      (buildItem(row).context as PostgresContext).cursor

    const stats = await raceAbort(
      client.query<TableStats>({
        text: STATS_SQL,
        values: [qualifiedName(table.schema, table.table)],
      }),
      signal,
    )
    const { relkind, rows, pages } = stats.rows[0] ?? { relkind: 'v', rows: 0, pages: 0 }
    const samplable = relkind === 'r' || relkind === 'p' || relkind === 'm'
    let percent =
      !samplable || pages <= EXACT_PAGES
        ? 100
        : rows > 0
          ? (100 * SAMPLE_ROWS) / rows
          : (100 * SAMPLE_ROWS) / (pages * 50)
    percent = Math.min(100, Math.max(0.0001, percent))

    let keys: CursorTuple[] = []
    let matched = 0
    for (let round = 0; ; round++) {
      const values: (string | null)[] = []
      const where = whereClauses(table, stream, cursorNames, undefined, values)
      let sample = ''
      if (percent < 100) {
        values.push(String(percent))
        sample = ` TABLESAMPLE SYSTEM ($${values.length})`
      }
      const sql =
        `SELECT ${cursorNames.map(quoteIdent).join(', ')} FROM ${qualifiedName(table.schema, table.table)}${sample}` +
        (where.length > 0 ? ` WHERE ${where.map((w) => `(${w})`).join(' AND ')}` : '') +
        ` ORDER BY ${cursorNames.map(quoteIdent).join(', ')}`
      ;({ keys, rows: matched } = await readKeys(client, sql, values, toTuple, signal).catch(
        (error) => {
          broken = true
          throw error
        },
      ))
      if (
        percent >= 100 ||
        keys.length >= count * MIN_SAMPLE_PER_PARTITION ||
        round >= SAMPLE_ROUNDS - 1
      )
        break
      // Too few rows in the sample (a selective filter, stale statistics): sample more.
      percent = round === SAMPLE_ROUNDS - 2 ? 100 : Math.min(100, percent * 10)
    }
    return rangesFromKeys(stream, keys, count, percent >= 100 ? matched : undefined)
  } finally {
    client.release(broken || signal.aborted ? true : undefined)
  }
}

/** The most keys held while planning: beyond it every other one is dropped (they arrive sorted). */
export const MAX_KEYS = 100_000

/**
 * The rows of a key query as cursor tuples, through a portal (5000 rows per round trip). At
 * most `MAX_KEYS` are held: past that the kept keys are thinned to every other one and only
 * every `stride`-th row is kept, so the keys stay evenly spread over the rows (the quantiles
 * stay right) and memory stays bounded whatever the table.
 */
async function readKeys(
  client: PoolClient,
  sql: string,
  values: (string | null)[],
  toTuple: (row: (string | null)[]) => CursorTuple,
  signal: AbortSignal,
): Promise<{ keys: CursorTuple[]; rows: number }> {
  const cursor = client.query(
    new Cursor<(string | null)[]>(sql, values, { rowMode: 'array', types: TEXT_TYPES }),
  )
  let keys: CursorTuple[] = []
  let rows = 0
  let stride = 1
  for (;;) {
    const page = await raceAbort(cursor.read(5000), signal)
    for (const row of page) {
      if (rows++ % stride !== 0) continue
      keys.push(toTuple(row))
      if (keys.length >= MAX_KEYS) {
        keys = keys.filter((_, i) => i % 2 === 0)
        stride *= 2
      }
    }
    if (page.length < 5000) break
  }
  await cursor.close()
  return { keys, rows }
}

/**
 * Ranges from sorted keys: boundary j is the last key of the j-th of `count` equal shares.
 * The first range starts where the stream's range does and the last one ends where it does.
 */
export function rangesFromKeys<TStream extends { range?: PostgresRange | undefined }>(
  stream: TStream,
  keys: readonly CursorTuple[],
  count: number,
  /** How many rows the keys came from when every row was read; undefined for a sample. */
  rows: number | undefined,
): PartitionPlan<TStream> {
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
