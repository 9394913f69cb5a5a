import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  COLUMNS_WIRE,
  columnsRecord,
  columnValues,
  type Data,
  ItemRows,
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  type SqlValue,
  throwIfAborted,
  type WireRows,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import type { PoolClient } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { describeTable, qualifiedName, quoteIdent, type TableInfo } from './postgres-catalog.js'
import { addColumnsStatement, checkIdentifier, createTableStatement } from './postgres-ddl.js'
import { type Encoder, encodersFor, ValueRefused } from './postgres-encode.js'
import { classifyPostgresError, hasSqlState, isRowDataError } from './postgres-errors.js'
import type { PostgresSinkStream } from './postgres-schemas.js'
import { COPY_TEXT, recordFromLine } from './postgres-wire.js'

/** PostgreSQL's limit on bind parameters in one statement. */
const MAX_PARAMETERS = 65_535
/** COPY data is sent in chunks of about this many bytes. */
const COPY_CHUNK_BYTES = 256 * 1024
/** COPY data buffered ahead of the socket, at most. */
const COPY_BUFFER_BYTES = 8 * 1024 * 1024
/** Lines are encoded into the chunk buffer once they add up to about this many characters. */
const COPY_FLUSH_CHARS = 16 * 1024

type Row = Record<string, SqlValue>

export interface SinkDeps {
  acquire(): Promise<PoolClient>
  /** The table's catalog info, cached; `refresh` reads the catalog again. */
  table(client: PoolClient, schema: string, table: string, refresh?: boolean): Promise<TableInfo>
  /** The offsets table of a sink stream (created when missing), as a qualified name. */
  offsets(client: PoolClient, schema: string, stream: PostgresSinkStream): Promise<string>
}

/** What a batch commits with its rows: `context` (as JSON) under `key`. */
export interface BatchOffset {
  key: string
  context: unknown
}

/** Column encoders built once per table (the table info is replaced when it changes). */
const ENCODERS = new WeakMap<TableInfo, Map<string, Encoder>>()

function encoders(table: TableInfo, columns: readonly string[]): Encoder[] {
  let cache = ENCODERS.get(table)
  if (!cache) {
    cache = new Map()
    ENCODERS.set(table, cache)
  }
  return encodersFor(table.byName, cache, columns)
}

/**
 * The rows of a batch to write: records (one item per row), or `nvisy-columns` items (many
 * rows each, values by column), behind one accessor so both are encoded by the same code.
 */
interface BatchRows {
  readonly count: number
  readonly columns: readonly string[]
  /** The value of `columns[c]` in row `r`. */
  cell(r: number, c: number): SqlValue | undefined
  /** Row `r` failed alone: its entry in `WriteResult.failed`. */
  failure(r: number, error: ProviderError): WriteFailure
}

function recordRows(rows: readonly Row[], columns: readonly string[]): BatchRows {
  return {
    count: rows.length,
    columns,
    cell: (r, c) => rows[r]![columns[c]!],
    failure: (r, error) => ({ index: r, error }),
  }
}

/** The rows of `nvisy-columns` items: a refused row is reported with its item's index and as a record. */
function columnRows(items: readonly WireRows[]): BatchRows {
  const first = items[0]!
  for (const wire of items) {
    if (!wire.values || wire.values.length !== wire.columns.length)
      throw new ProviderError({
        kind: 'internal',
        message: `an ${COLUMNS_WIRE} item has ${wire.values?.length ?? 0} value columns for ${wire.columns.length} columns`,
      })
    if (!sameColumns(first.columns, wire.columns))
      throw new ProviderError({
        kind: 'internal',
        message: `the items of an ${COLUMNS_WIRE} batch name different columns`,
      })
  }
  // Each column read through `columnValues` (a tagged column's text tagged again).
  const readers = items.map((wire) => wire.columns.map((_, c) => columnValues(wire, c)))
  if (items.length === 1) {
    const columns = readers[0]!
    return {
      count: first.rows,
      columns: first.columns,
      cell: (r, c) => columns[c]!(r),
      failure: (r, error) => ({ index: 0, error, data: columnsRecord(first, r) }),
    }
  }
  // Several items (not how the runtime batches them): address rows through their item.
  const byItem = new ItemRows(items)
  return {
    count: byItem.count,
    columns: first.columns,
    cell: (r, c) => {
      const i = byItem.locate(r)
      return readers[i]![c]!(r - byItem.start(i))
    },
    failure: (r, error) => {
      const i = byItem.locate(r)
      return { index: i, error, data: columnsRecord(items[i]!, r - byItem.start(i)) }
    },
  }
}

/** A value the destination column cannot hold: that row fails alone, naming column and rule. */
function refusal(row: number, table: TableInfo, column: string, refused: ValueRefused) {
  const info = table.byName.get(column)
  return new ProviderError({
    kind: 'data',
    message: `row ${row} refused for ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)}: column ${JSON.stringify(column)} (${info?.typeName ?? 'unknown type'}): ${refused.message}`,
    issues: [{ path: `/values/${column}`, rule: 'type', message: refused.message }],
  })
}

/** Encode every row of `rows`, dropping (and reporting) the refused ones. */
function encodeRows(
  table: TableInfo,
  rows: BatchRows,
  encode: readonly Encoder[],
  failed: WriteFailure[],
): { index: number; values: (string | null)[] }[] {
  const out: { index: number; values: (string | null)[] }[] = []
  const columns = rows.columns
  const count = columns.length
  for (let r = 0; r < rows.count; r++) {
    const values: (string | null)[] = new Array(count)
    let c = 0
    try {
      for (; c < count; c++) values[c] = encode[c]!(rows.cell(r, c))
    } catch (error) {
      if (!(error instanceof ValueRefused)) throw error
      failed.push(rows.failure(r, refusal(r, table, columns[c]!, error)))
      continue
    }
    out.push({ index: r, values })
  }
  return out
}

function offsetStatement(qualifiedOffsets: string): string {
  return `INSERT INTO ${qualifiedOffsets} (key, context, updated_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO UPDATE SET context = EXCLUDED.context, updated_at = EXCLUDED.updated_at`
}

async function commitOffset(
  client: PoolClient,
  offsetsTable: string | undefined,
  offset: BatchOffset | undefined,
): Promise<void> {
  if (!offset || !offsetsTable) return
  await client.query(offsetStatement(offsetsTable), [
    offset.key,
    JSON.stringify(offset.context ?? null),
  ])
}

/** Every column named by any record, in first-seen order. */
function batchColumns(rows: readonly Row[]): string[] {
  // Records of one batch usually have the same keys in the same order: check that with
  // string comparisons, and only collect into a set when a record differs.
  const columns: string[] = []
  for (const name in rows[0]) columns.push(name)
  let seen: Set<string> | undefined
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!
    let i = 0
    let same = true
    for (const name in row) {
      if (name !== columns[i++]) {
        same = false
        break
      }
    }
    if (same && i === columns.length) continue
    seen ??= new Set(columns)
    for (const name in row) {
      if (!seen.has(name)) {
        seen.add(name)
        columns.push(name)
      }
    }
  }
  return columns
}

function checkColumns(table: TableInfo, columns: readonly string[]): void {
  for (const name of columns) {
    if (!table.byName.has(name)) {
      throw new ProviderError({
        kind: 'config',
        code: '42703',
        message: `column ${JSON.stringify(name)} does not exist in ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)}`,
      })
    }
  }
}

function conflictKeys(table: TableInfo, stream: PostgresSinkStream): string[] {
  const keys = stream.keys ?? table.primaryKey
  if (keys.length === 0) {
    throw new ProviderError({
      kind: 'config',
      message: `${JSON.stringify(table.schema)}.${JSON.stringify(table.table)} has no primary key: set stream.keys to the columns of a unique constraint, or use mode "append"`,
      issues: [
        {
          path: '/stream/keys',
          rule: 'required',
          message: 'is required when the table has no primary key',
        },
      ],
    })
  }
  keys.forEach((key, i) => {
    if (!table.byName.has(key)) {
      throw new ProviderError({
        kind: 'config',
        message: `key column ${JSON.stringify(key)} does not exist (/stream/keys/${i})`,
        issues: [{ path: `/stream/keys/${i}`, rule: 'exists', message: 'column does not exist' }],
      })
    }
  })
  return keys
}

interface Statement {
  /** INSERT for `rowCount` rows. */
  text(rowCount: number): string
  values(rows: readonly { values: (string | null)[] }[]): (string | null)[]
}

/** The ON CONFLICT clause of an upsert of `columns` by `keys`: the other columns are updated. */
function onConflict(columns: readonly string[], keys: readonly string[]): string {
  const updates = columns.filter((c) => !keys.includes(c))
  return (
    `ON CONFLICT (${keys.map(quoteIdent).join(', ')}) ` +
    (updates.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${updates.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`)
  )
}

function insertStatement(
  table: TableInfo,
  columns: readonly string[],
  keys: readonly string[] | undefined,
): Statement {
  const target = `INSERT INTO ${qualifiedName(table.schema, table.table)} (${columns.map(quoteIdent).join(', ')}) VALUES `
  const conflict = keys ? ` ${onConflict(columns, keys)}` : ''
  const texts = new Map<number, string>()
  return {
    text(rowCount) {
      let text = texts.get(rowCount)
      if (!text) {
        const tuples: string[] = []
        let n = 0
        for (let r = 0; r < rowCount; r++)
          tuples.push(`(${columns.map(() => `$${++n}`).join(', ')})`)
        text = target + tuples.join(', ') + conflict
        if (texts.size < 4) texts.set(rowCount, text)
      }
      return text
    },
    values(rows) {
      const out: (string | null)[] = []
      for (const row of rows) for (const v of row.values) out.push(v)
      return out
    },
  }
}

function rowRejected(row: number, error: unknown, table: TableInfo): ProviderError {
  const classified = classifyPostgresError(error)
  const message = classified?.message ?? String((error as Error)?.message ?? error)
  return new ProviderError({
    kind: 'data',
    code: classified?.code,
    message: `row ${row} rejected by ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)}: ${message}`,
    cause: error,
  })
}

async function rollbackQuietly(client: PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK')
    return true
  } catch {
    return false
  }
}

type EncodedRow = { index: number; values: (string | null)[] }

/**
 * The redo after the server refused a row of the batch: one transaction, the encoded rows
 * written in parts under savepoints, a part that fails on a row's data is rolled back and
 * split in two until the refused rows stand alone (a few bad rows in a large batch cost
 * about 2·log2(n) statements each, not one per row). The good rows and the batch's offset
 * commit together.
 */
async function writeBisecting(
  client: PoolClient,
  table: TableInfo,
  rows: BatchRows,
  keys: readonly string[] | undefined,
  offsetsTable: string | undefined,
  offset: BatchOffset | undefined,
  signal: AbortSignal,
): Promise<WriteResult> {
  const failed: WriteFailure[] = []
  const columns = rows.columns
  const encoded = encodeRows(table, rows, encoders(table, columns), failed)
  const statement = keys ? insertStatement(table, columns, keys) : undefined
  await bisectInTransaction(
    client,
    encoded,
    (part) =>
      statement
        ? upsertBatch(client, statement, part, columns, signal)
        : copyEncoded(client, table, part, columns),
    (row, error) => failed.push(rows.failure(row.index, rowRejected(row.index, error, table))),
    () => commitOffset(client, offsetsTable, offset),
    signal,
  )
  failed.sort((a, b) => a.index - b.index)
  return { written: rows.count - failed.length, failed }
}

/**
 * One transaction: `rows` written in parts under savepoints, a part that fails on a row's
 * data rolled back and split in two until the refused rows stand alone (`refused` is called
 * for each), then `last` (the batch's offset) and COMMIT. A few bad rows in a large batch
 * cost about 2·log2(n) statements each, not one per row.
 */
async function bisectInTransaction<T>(
  client: PoolClient,
  rows: readonly T[],
  writePart: (part: readonly T[]) => Promise<void>,
  refused: (row: T, error: unknown) => void,
  last: () => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const attempt = async (part: readonly T[]): Promise<void> => {
    throwIfAborted(signal)
    await client.query('SAVEPOINT nvisy_part')
    try {
      await writePart(part)
      await client.query('RELEASE SAVEPOINT nvisy_part')
    } catch (error) {
      if (!isRowDataError(error)) throw error
      await client.query('ROLLBACK TO SAVEPOINT nvisy_part')
      await client.query('RELEASE SAVEPOINT nvisy_part')
      if (part.length === 1) {
        refused(part[0]!, error)
        return
      }
      const half = Math.ceil(part.length / 2)
      await attempt(part.slice(0, half))
      await attempt(part.slice(half))
    }
  }
  await client.query('BEGIN')
  try {
    if (rows.length > 0) await attempt(rows)
    await last()
    await client.query('COMMIT')
  } catch (error) {
    await rollbackQuietly(client)
    throw error
  }
}

/** COPY of rows already encoded (the redo path). */
async function copyEncoded(
  client: PoolClient,
  table: TableInfo,
  part: readonly EncodedRow[],
  columns: readonly string[],
): Promise<void> {
  const sql = `COPY ${qualifiedName(table.schema, table.table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`
  let text = ''
  for (const row of part) text += `${row.values.map(copyText).join('\t')}\n`
  await pipeline(Readable.from([Buffer.from(text)]), client.query(copyFrom(sql)))
}

function rowsPerStatement(columns: readonly string[]): number {
  return Math.max(1, Math.min(1000, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length))))
}

async function upsertBatch(
  client: PoolClient,
  statement: Statement,
  rows: readonly EncodedRow[],
  columns: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  const perStatement = rowsPerStatement(columns)
  for (let start = 0; start < rows.length; start += perStatement) {
    throwIfAborted(signal)
    const chunk = rows.slice(start, start + perStatement)
    await client.query(statement.text(chunk.length), statement.values(chunk))
  }
}

/**
 * COPY text of `rows` in buffers of about COPY_CHUNK_BYTES. Lines are joined into a short
 * string (about COPY_FLUSH_CHARS) that is encoded into the current buffer at once: few
 * encode calls, and no long-lived rope of strings for the garbage collector to trace (the
 * buffers live outside the JS heap). A row may span two chunks (CopyData messages need not
 * align with rows).
 */
function* copyChunks(
  table: TableInfo,
  rows: BatchRows,
  encode: readonly Encoder[],
  failed: WriteFailure[],
  signal: AbortSignal,
): Generator<Buffer> {
  const columns = rows.columns
  let buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES)
  let at = 0
  let pending = ''
  const encodeFirst = encode[0]!
  const count = columns.length
  // Encode `pending` into the buffer; hand the buffer over first when it might not fit.
  function* flush(): Generator<Buffer> {
    // At most 3 UTF-8 bytes per UTF-16 unit.
    const room = pending.length * 3
    if (at + room > buffer.length) {
      throwIfAborted(signal)
      if (at > 0) yield buffer.subarray(0, at)
      buffer = Buffer.allocUnsafe(Math.max(COPY_CHUNK_BYTES, room))
      at = 0
    }
    at += buffer.write(pending, at)
    pending = ''
  }
  for (let r = 0; r < rows.count; r++) {
    let line: string
    let c = 0
    try {
      line = copyText(encodeFirst(rows.cell(r, 0)))
      for (c = 1; c < count; c++) line += `\t${copyText(encode[c]!(rows.cell(r, c)))}`
    } catch (error) {
      if (!(error instanceof ValueRefused)) throw error
      failed.push(rows.failure(r, refusal(r, table, columns[c]!, error)))
      continue
    }
    pending += `${line}\n`
    if (pending.length >= COPY_FLUSH_CHARS) yield* flush()
  }
  if (pending.length > 0) yield* flush()
  if (at > 0) yield buffer.subarray(0, at)
}

async function copyBatch(
  client: PoolClient,
  table: TableInfo,
  rows: BatchRows,
  failed: WriteFailure[],
  signal: AbortSignal,
): Promise<void> {
  const columns = rows.columns
  const sql = `COPY ${qualifiedName(table.schema, table.table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`
  // The whole batch's COPY text (up to COPY_BUFFER_BYTES) is handed to the socket at once:
  // the server then takes it at its own pace, without waiting for this thread to produce
  // the next chunk between the items of a read running in the same process.
  const target = client.query(copyFrom(sql, { highWaterMark: COPY_BUFFER_BYTES }))
  await pipeline(
    Readable.from(copyChunks(table, rows, encoders(table, columns), failed, signal), {
      objectMode: false,
      highWaterMark: COPY_BUFFER_BYTES,
    }),
    target,
  )
}

const COPY_ESCAPED = /[\\\t\n\r]/
const COPY_ESCAPED_ALL = /[\\\t\n\r]/g
const copyEscape = (c: string) =>
  c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'

/** One field of COPY's text format: '\N' for null, backslash, tab, newline and CR escaped. */
function copyText(text: string | null): string {
  if (text === null) return '\\N'
  if (!COPY_ESCAPED.test(text)) return text
  return text.replace(COPY_ESCAPED_ALL, copyEscape)
}

/**
 * Write one batch in one transaction: upsert (multi-row INSERT ... ON CONFLICT) or append
 * (COPY FROM STDIN), each value encoded for its column's declared type (a value the column
 * cannot hold fails its row alone). With `offset`, the offset is committed in the same
 * transaction. When the batch fails on a row's data, it is rolled back and written again in
 * parts under savepoints, split until the bad rows stand alone (with the offset).
 */
export async function writeBatch(
  deps: SinkDeps,
  stream: PostgresSinkStream,
  schema: string,
  batch: readonly Data[],
  signal: AbortSignal,
  offset?: BatchOffset,
  wire?: string,
): Promise<WriteResult> {
  throwIfAborted(signal)
  let rows: BatchRows
  if (wire === COLUMNS_WIRE) {
    const items = batch.map((item) => (item as Extract<Data, { kind: 'record' }>).wire!)
    if (items.some((w) => w?.format !== COLUMNS_WIRE))
      throw new ProviderError({
        kind: 'internal',
        message: `an ${COLUMNS_WIRE} write got an item that is not ${COLUMNS_WIRE} rows`,
      })
    if (items.length === 0 && !offset) return { written: 0, failed: [] }
    rows = items.length === 0 ? recordRows([], []) : columnRows(items)
  } else {
    const records = batch.map((item) => (item as Extract<Data, { kind: 'record' }>).values)
    if (records.length === 0 && !offset) return { written: 0, failed: [] }
    rows = recordRows(records, batchColumns(records))
  }
  const columns = rows.columns
  const client = await deps.acquire()
  let destroy = false
  try {
    let table = await deps.table(client, schema, stream.table)
    if (columns.length === 0 && rows.count > 0) {
      throw new ProviderError({
        kind: 'config',
        message: 'every record in the batch is empty: nothing to write',
      })
    }
    if (columns.some((name) => !table.byName.has(name))) {
      // The table may have changed since it was cached (columns added elsewhere): look again.
      table = await deps.table(client, schema, stream.table, true)
      checkColumns(table, columns)
    }
    const keys = stream.mode !== 'append' ? conflictKeys(table, stream) : undefined
    const offsetsTable = offset ? await deps.offsets(client, schema, stream) : undefined
    // One statement is atomic on its own: a COPY, or an upsert that fits one INSERT, runs
    // without BEGIN/COMMIT round trips. Larger upserts, and any batch with an offset, share
    // one transaction.
    const explicit =
      offset !== undefined || (keys !== undefined && rows.count > rowsPerStatement(columns))
    const failed: WriteFailure[] = []
    try {
      if (explicit) await client.query('BEGIN')
      if (rows.count > 0) {
        if (keys) {
          const encoded = encodeRows(table, rows, encoders(table, columns), failed)
          await upsertBatch(client, insertStatement(table, columns, keys), encoded, columns, signal)
        } else await copyBatch(client, table, rows, failed, signal)
      }
      await commitOffset(client, offsetsTable, offset)
      if (explicit) await client.query('COMMIT')
      failed.sort((a, b) => a.index - b.index)
      return { written: rows.count - failed.length, failed }
    } catch (error) {
      if (explicit && !(await rollbackQuietly(client))) {
        destroy = true
        throw error
      }
      if (!isRowDataError(error) || signal.aborted) throw error
    }
    return await writeBisecting(client, table, rows, keys, offsetsTable, offset, signal)
  } catch (error) {
    if (signal.aborted || !(ProviderError.isInstance(error) || hasSqlState(error))) destroy = true
    throw error
  } finally {
    client.release(destroy ? true : undefined)
  }
}

/** One row of wire text, where it came from: the batch item and the row within it. */
interface WireLine {
  index: number
  row: number
  /** The row's text with its newline. */
  line: Uint8Array
}

/** Wire rows of a text format: `bytes` present. */
type TextRows = WireRows & { bytes: Uint8Array }

function wireLines(items: readonly TextRows[]): WireLine[] {
  const lines: WireLine[] = []
  items.forEach((wire, index) => {
    const bytes = Buffer.from(wire.bytes.buffer, wire.bytes.byteOffset, wire.bytes.byteLength)
    let start = 0
    let row = 0
    while (start < bytes.length) {
      let end = bytes.indexOf(0x0a, start)
      end = end === -1 ? bytes.length : end + 1
      lines.push({ index, row: row++, line: bytes.subarray(start, end) })
      start = end
    }
  })
  return lines
}

/**
 * `chunks` in views of at most COPY_CHUNK_BYTES: each write is one CopyData message, and the
 * server reads a message whole into a buffer of its size, so an item of 8 MB sent as one
 * message would cost each COPY's backend 8 MB (psql sends messages of a line or 64 kB).
 */
function* copyPieces(chunks: readonly Uint8Array[]): Generator<Uint8Array> {
  for (const chunk of chunks)
    for (let at = 0; at < chunk.length; at += COPY_CHUNK_BYTES)
      yield chunk.subarray(at, Math.min(chunk.length, at + COPY_CHUNK_BYTES))
}

async function copyBytes(
  client: PoolClient,
  sql: string,
  chunks: readonly Uint8Array[],
): Promise<void> {
  await pipeline(
    Readable.from(copyPieces(chunks), { objectMode: false, highWaterMark: COPY_BUFFER_BYTES }),
    client.query(copyFrom(sql, { highWaterMark: COPY_BUFFER_BYTES })),
  )
}

/** The temporary table an upsert of COPY text is staged in, for one transaction. */
const STAGE = 'pg_temp.nvisy_upsert_stage'

/**
 * How a batch's COPY text is written: `whole` writes the batch in its transaction, `part` one
 * part of it under a savepoint (the redo in parts). An append copies the text into the table.
 * An upsert copies it into a temporary staging table with the destination's column types
 * (created for the transaction, `ON COMMIT DROP`; no constraints, so a missing column's
 * default and the table's own checks apply at the move), then moves it with one INSERT ...
 * SELECT ... ON CONFLICT; a part then empties the stage, so each part is staged alone. Keys
 * repeated within one statement make PostgreSQL refuse it (a data error): the parts are then
 * split until each key stands alone, in order, so the last row wins, as in the row-by-row
 * upsert.
 */
interface WireWriter {
  /** Whether writing needs a transaction (the stage lives in one). */
  staged: boolean
  whole(chunks: readonly Uint8Array[]): Promise<void>
  part(chunks: readonly Uint8Array[]): Promise<void>
}

function wireWriter(
  client: PoolClient,
  table: TableInfo,
  columns: readonly string[],
  stream: PostgresSinkStream,
): WireWriter {
  const target = qualifiedName(table.schema, table.table)
  const list = columns.map(quoteIdent).join(', ')
  if ((stream.mode ?? 'upsert') === 'append') {
    const sql = `COPY ${target} (${list}) FROM STDIN`
    const copy = (chunks: readonly Uint8Array[]) => copyBytes(client, sql, chunks)
    return { staged: false, whole: copy, part: copy }
  }
  const keys = conflictKeys(table, stream)
  // The columns' own types (format_type), declared rather than copied from the table with a
  // query: a role that may insert and update but not select still stages.
  const declared = columns
    .map((name) => `${quoteIdent(name)} ${table.byName.get(name)!.typeName}`)
    .join(', ')
  const create = `CREATE TEMPORARY TABLE IF NOT EXISTS ${STAGE} (${declared}) ON COMMIT DROP`
  const copy = `COPY ${STAGE} (${list}) FROM STDIN`
  // A plain INSERT ... SELECT: emptying the stage in the same statement (a DELETE ...
  // RETURNING) cost a fifth more, and a whole batch is staged once.
  const move = `INSERT INTO ${target} (${list}) SELECT ${list} FROM ${STAGE} ${onConflict(columns, keys)}`
  const whole = async (chunks: readonly Uint8Array[]) => {
    await client.query(create)
    await copyBytes(client, copy, chunks)
    await client.query(move)
  }
  return {
    staged: true,
    whole,
    async part(chunks) {
      await whole(chunks)
      await client.query(`TRUNCATE ${STAGE}`)
    },
  }
}

/**
 * Write items of wire text (`postgresql-copy-text`, from a PostgreSQL source whose columns
 * have the destination's types, `acceptWire`) with one COPY, as they are (an upsert through
 * a staging table, `wireWriter`), the offset in the same transaction. When the server refuses a row's data, the batch is written again in
 * parts of rows under savepoints until the refused rows stand alone: each is reported with
 * its item's index and the row as a record, and the rest of the batch commits with the offset.
 */
export async function writeWireBatch(
  deps: SinkDeps,
  stream: PostgresSinkStream,
  schema: string,
  batch: readonly Data[],
  signal: AbortSignal,
  offset?: BatchOffset,
): Promise<WriteResult> {
  throwIfAborted(signal)
  const items: TextRows[] = []
  let total = 0
  for (const data of batch) {
    const wire = data.kind === 'record' ? data.wire : undefined
    if (!wire || wire.format !== COPY_TEXT || !wire.bytes)
      throw new ProviderError({
        kind: 'internal',
        message: `a ${COPY_TEXT} write got an item that is not ${COPY_TEXT} rows`,
      })
    if (items.length > 0 && !sameColumns(items[0]!.columns, wire.columns))
      throw new ProviderError({
        kind: 'internal',
        message: `the items of a ${COPY_TEXT} batch name different columns`,
      })
    items.push(wire as TextRows)
    total += wire.rows
  }
  if (items.length === 0 && !offset) return { written: 0, failed: [] }
  const client = await deps.acquire()
  let destroy = false
  try {
    const columns = items[0]?.columns ?? []
    let table = await deps.table(client, schema, stream.table)
    if (columns.some((name) => !table.byName.has(name))) {
      table = await deps.table(client, schema, stream.table, true)
      checkColumns(table, columns)
    }
    const offsetsTable = offset ? await deps.offsets(client, schema, stream) : undefined
    const write = wireWriter(client, table, columns, stream)
    // An upsert's staging table lives for one transaction.
    const explicit = offset !== undefined || write.staged
    try {
      if (explicit) await client.query('BEGIN')
      if (items.length > 0) await write.whole(items.map((wire) => wire.bytes))
      await commitOffset(client, offsetsTable, offset)
      if (explicit) await client.query('COMMIT')
      return { written: total, failed: [] }
    } catch (error) {
      if (explicit && !(await rollbackQuietly(client))) {
        destroy = true
        throw error
      }
      if (!isRowDataError(error) || signal.aborted) throw error
    }
    const failed: WriteFailure[] = []
    await bisectInTransaction(
      client,
      wireLines(items),
      (part) => write.part(part.map((l) => l.line)),
      (line, error) => {
        const classified = classifyPostgresError(error)
        const message = classified?.message ?? String((error as Error)?.message ?? error)
        failed.push({
          index: line.index,
          error: new ProviderError({
            kind: 'data',
            code: classified?.code,
            message: `row ${line.row} of item ${line.index} rejected by ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)}: ${message}`,
            cause: error,
          }),
          data: recordFromLine(table, columns, line.line.subarray(0, line.line.length - 1)),
        })
      },
      () => commitOffset(client, offsetsTable, offset),
      signal,
    )
    return { written: total - failed.length, failed }
  } catch (error) {
    if (signal.aborted || !(ProviderError.isInstance(error) || hasSqlState(error))) destroy = true
    throw error
  } finally {
    client.release(destroy ? true : undefined)
  }
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i])
}

/**
 * Create the table (create: ifMissing) or add the columns it lacks (evolve: addColumns), or
 * say what is missing; with dryRun, only say what would be done. A caller caching the table's
 * metadata drops it when actions ran.
 */
export async function prepareTable(
  client: PoolClient,
  schema: string,
  stream: PostgresSinkStream,
  options: PrepareOptions,
): Promise<PrepareResult> {
  for (let attempt = 0; ; attempt++) {
    const info = await describeTable(client, schema, stream.table)
    const actions: string[] = []
    if (!info) {
      if ((stream.create ?? 'never') === 'never') {
        throw new ProviderError({
          kind: 'not_found',
          code: '42P01',
          message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} does not exist and stream.create is "never" (set create: "ifMissing" to create it)`,
        })
      }
      if (!options.schema) {
        throw new ProviderError({
          kind: 'config',
          message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} does not exist and the source did not describe its columns: nothing to create it from`,
        })
      }
      checkIdentifier(stream.table, 'table')
      const namespace = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
        schema,
      ])
      if (namespace.rowCount === 0) {
        checkIdentifier(schema, 'schema')
        actions.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`)
      }
      actions.push(createTableStatement(schema, stream.table, options.schema))
    } else if (options.schema) {
      const missing = options.schema.columns.filter((c) => !info.byName.has(c.name))
      if (missing.length > 0) {
        if ((stream.evolve ?? 'none') === 'none') {
          const names = missing.map((c) => JSON.stringify(c.name)).join(', ')
          throw new ProviderError({
            kind: 'config',
            message: `table ${JSON.stringify(schema)}.${JSON.stringify(stream.table)} lacks column(s) ${names} and stream.evolve is "none" (set evolve: "addColumns" to add them)`,
            issues: missing.map((c) => ({
              path: '/stream/evolve',
              rule: 'column exists',
              message: `column ${JSON.stringify(c.name)} is missing`,
            })),
          })
        }
        actions.push(addColumnsStatement(schema, stream.table, missing, options.schema.system))
      }
    }
    if (options.dryRun || actions.length === 0) return { existed: info !== undefined, actions }
    try {
      await client.query('BEGIN')
      for (const action of actions) await client.query(action)
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      // Created by someone else meanwhile: look again (once).
      const code = (error as { code?: string }).code
      if (attempt === 0 && (code === '42P07' || code === '42701')) continue
      throw error
    }
    return { existed: info !== undefined, actions }
  }
}
