import {
  abortReason,
  COLUMNS_WIRE,
  type ColumnType as PortableType,
  ProviderError,
  type ReadItem,
  raceAbort,
  type SqlValue,
  type WireAnswer,
  type WireOffer,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { PoolClient } from 'pg'
import {
  type ColumnInfo,
  describeTable,
  type TableInfo,
  tableNotFound,
} from './postgres-catalog.js'
import { CopyOut } from './postgres-copy-out.js'
import { describeColumns, portableType } from './postgres-ddl.js'
import { hasSqlState } from './postgres-errors.js'
import type { PostgresContext, PostgresSinkStream, PostgresStream } from './postgres-schemas.js'
import { planRead, type ReadPlan, type SourceDeps } from './postgres-source.js'
import { converterFor, cursorValueFromText } from './postgres-values.js'

/*
 * Pass-through between two PostgreSQL tables whose columns have the same types: the source
 * runs `COPY (SELECT ... ORDER BY cursor) TO STDOUT` and hands over the text as it came, cut
 * at row ends into items of at most `maxRows` rows, each with the cursor of its last row (the
 * same context a row-by-row read gives, so either kind of read resumes the other). The sink
 * sends that text to `COPY ... FROM STDIN`. No value is decoded or encoded on the way: both
 * sessions use the provider's session settings (UTC, ISO dates, shortest-exact floats, hex
 * bytea, UTF-8), so the server that parses the text is given what a server printed for the
 * same type.
 */

/** The wire format both ends name. */
export const COPY_TEXT = 'postgresql-copy-text'

/**
 * Types whose text depends on a setting the provider does not pin (money: lc_monetary) are
 * never passed through: their rows go value by value, refused where they cannot be exact.
 */
const SETTING_DEPENDENT = new Set(['money', 'money[]'])

/** The columns a stream's rows carry as wire text (its output columns), or why they cannot. */
function wireColumns(table: TableInfo, plan: ReadPlan): string[] | { reason: string } {
  // The COPY text must hold exactly the columns the sink receives: a cursor column that is
  // not among them would have to travel as an extra field.
  const outside = plan.cursor.find((c) => c.index >= plan.output.length)
  if (outside)
    return {
      reason: `cursor column ${JSON.stringify(outside.column.name)} is not among stream.columns`,
    }
  for (const field of plan.output) {
    const column = table.byName.get(field.name)!
    if (SETTING_DEPENDENT.has(column.baseTypeName))
      return {
        reason: `column ${JSON.stringify(field.name)} is ${column.baseTypeName}, whose text depends on lc_monetary`,
      }
  }
  return plan.output.map((f) => f.name)
}

/**
 * `wireOffer`: the stream's output columns and their types, or why it cannot go as COPY text
 * (`nvisy-columns` batches can always be read).
 */
export async function wireOffer(
  client: PoolClient,
  schema: string,
  stream: PostgresStream,
  format: string,
): Promise<WireOffer | { reason: string }> {
  const table = await describeTable(client, schema, stream.table)
  if (!table) throw tableNotFound(schema, stream.table)
  const plan = planRead(table, stream, undefined)
  if (format === COLUMNS_WIRE) {
    const columns = plan.output.map((f) => f.name)
    return { format, columns, schema: describeColumns(table, columns) }
  }
  const columns = wireColumns(table, plan)
  if (!Array.isArray(columns)) return columns
  return { format: COPY_TEXT, columns, schema: describeColumns(table, columns) }
}

/**
 * `acceptWire`: COPY text is taken as it is when every offered column exists with the same
 * type (domains by their base type). An append copies it into the table; an upsert copies it
 * into a temporary staging table and moves it with INSERT ... SELECT ... ON CONFLICT, so the
 * conflict keys must be among the offered columns and the role must be allowed to create a
 * temporary table (`temporary`). `nvisy-columns` batches are taken when every column exists
 * (their values are encoded per destination column as records are, in either mode).
 */
export function acceptWire(
  table: TableInfo,
  stream: PostgresSinkStream,
  offer: WireOffer,
  { temporary }: { temporary: boolean } = { temporary: true },
): WireAnswer {
  const refuse = (reason: string): WireAnswer => ({ accepted: false, reason })
  if (offer.format === COLUMNS_WIRE) {
    // Decoded values by column: encoded per destination column as records are, in any mode.
    const missing = offer.columns.find((name) => !table.byName.has(name))
    return missing === undefined
      ? { accepted: true }
      : refuse(`column ${JSON.stringify(missing)} is not in the destination`)
  }
  if (offer.format !== COPY_TEXT) return refuse(`format ${JSON.stringify(offer.format)}`)
  if ((stream.mode ?? 'upsert') !== 'append') {
    const keys = stream.keys ?? table.primaryKey
    if (keys.length === 0) return refuse('mode "upsert" without conflict keys')
    const missing = keys.find((key) => !offer.columns.includes(key))
    if (missing !== undefined)
      return refuse(`the conflict key ${JSON.stringify(missing)} is not among the offered columns`)
    if (!temporary)
      return refuse(
        'mode "upsert" stages COPY text in a temporary table, and this role may not create one (TEMPORARY privilege)',
      )
  }
  if (offer.columns.length !== offer.schema.columns.length)
    return refuse('the offer does not describe every column')
  const foreign = offer.schema.system !== 'postgres'
  for (const [i, name] of offer.columns.entries()) {
    const source = offer.schema.columns[i]!
    if (source.name !== name) return refuse(`column ${i} is described as ${source.name}`)
    const target = table.byName.get(name)
    if (!target)
      return refuse(
        `column ${JSON.stringify(name)} is not in the destination (it is written by name)`,
      )
    if (SETTING_DEPENDENT.has(target.baseTypeName))
      return refuse(`column ${JSON.stringify(name)} is ${target.baseTypeName}`)
    if (foreign) {
      const problem = foreignTextProblem(source.type, portableType(target))
      if (problem)
        return refuse(
          `column ${JSON.stringify(name)} is ${target.baseTypeName} in the destination and ${source.nativeType} in ${offer.schema.system}: ${problem}`,
        )
      continue
    }
    if (target.baseTypeName !== source.nativeType)
      return refuse(
        `column ${JSON.stringify(name)} is ${target.baseTypeName} in the destination and ${source.nativeType} in the source`,
      )
  }
  return { accepted: true }
}

/** How many decimal digits an integer of `bits` bits can have. */
const INTEGER_DIGITS: Record<number, number> = { 8: 3, 16: 5, 24: 8, 32: 10, 64: 19 }

/**
 * Why COPY text of another system's column of type `source` may not land exactly in a
 * destination column of type `target`, or undefined when it does. The source promises that
 * each field is text PostgreSQL's input function reads as the source's value (its own digits,
 * ISO dates in UTC, UTF-8 characters, JSON text); this checks that the destination holds
 * every value of the source type as it is: integers in a range at least as wide, decimals
 * with at least as many digits on each side of the point, text without a shorter limit or
 * blank padding, timestamps of the same kind with at least the fraction digits. A value the
 * destination refuses anyway (a NUL character, a range a domain forbids) is refused by the
 * server, row by row, as when values are converted one by one; nothing is rounded or cut.
 */
export function foreignTextProblem(source: PortableType, target: PortableType): string | undefined {
  switch (source.type) {
    case 'integer': {
      const digits =
        source.bits === 64 && source.unsigned ? 20 : (INTEGER_DIGITS[source.bits] ?? Infinity)
      if (target.type === 'integer') {
        const needed = source.unsigned ? source.bits + 1 : source.bits
        return target.bits >= needed ? undefined : "the destination's range is narrower"
      }
      if (target.type === 'decimal')
        return target.precision === undefined || target.precision - (target.scale ?? 0) >= digits
          ? undefined
          : 'the destination has fewer digits before the point'
      return 'not an integer or decimal column'
    }
    case 'decimal': {
      if (target.type !== 'decimal') return 'not a decimal column'
      if (target.precision === undefined) return undefined
      if (source.precision === undefined) return "the destination's precision is bounded"
      const sourceScale = source.scale ?? 0
      const targetScale = target.scale ?? 0
      if (targetScale < sourceScale) return 'the destination has fewer digits after the point'
      return target.precision - targetScale >= source.precision - sourceScale
        ? undefined
        : 'the destination has fewer digits before the point'
    }
    case 'text':
      if (target.type !== 'text') return 'not a text column'
      if (target.fixed) return 'character(n) pads with blanks'
      if (target.maxLength === undefined) return undefined
      return source.maxLength !== undefined && source.maxLength <= target.maxLength
        ? undefined
        : "the destination's length limit is shorter"
    case 'json':
      return target.type === 'json' ? undefined : 'not a json or jsonb column'
    case 'date':
      return target.type === 'date' ? undefined : 'not a date column'
    case 'timestamp':
      if (target.type !== 'timestamp' || target.withTimeZone !== source.withTimeZone)
        return source.withTimeZone ? 'not a timestamptz column' : 'not a timestamp column'
      return (target.precision ?? 6) >= (source.precision ?? 6)
        ? undefined
        : 'the destination keeps fewer fraction digits'
    default:
      return `${source.type} values are not passed as text from another system`
  }
}

const UNESCAPE: Record<string, string> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
}

/** One field of COPY's text format: null for `\N`, backslash sequences decoded. */
export function copyFieldText(field: string): string | null {
  if (field === '\\N') return null
  if (!field.includes('\\')) return field
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, seq: string) => {
    if (seq[0] === 'x' && seq.length > 1)
      return String.fromCharCode(Number.parseInt(seq.slice(1), 16))
    if (/^[0-7]/.test(seq)) return String.fromCharCode(Number.parseInt(seq, 8))
    return UNESCAPE[seq] ?? seq
  })
}

/** The fields of one COPY text line (without its newline), decoded. */
export function copyLineFields(line: string): (string | null)[] {
  return line.split('\t').map(copyFieldText)
}

/** A refused line as a record (values converted as a row-by-row read converts them). */
export function recordFromLine(
  table: TableInfo,
  columns: readonly string[],
  line: Uint8Array,
): { kind: 'record'; values: Record<string, SqlValue> } {
  const fields = copyLineFields(
    Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('utf8'),
  )
  const values: Record<string, SqlValue> = {}
  columns.forEach((name, i) => {
    const text = fields[i] ?? null
    const column = table.byName.get(name)
    let value: SqlValue = text
    if (text !== null && column) {
      try {
        value = converterFor(column)(text)
      } catch {
        value = text
      }
    }
    Object.defineProperty(values, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  })
  return { kind: 'record', values }
}

/** The context of a line: its cursor fields, as a row-by-row read gives them. */
function lineContext(line: string, cursor: ReadPlan['cursor']): PostgresContext {
  const fields = line.split('\t', Math.max(...cursor.map((c) => c.index)) + 1)
  return {
    cursor: cursor.map(({ column, index }) => {
      const text = copyFieldText(fields[index] ?? '\\N')
      if (text === null)
        throw new ProviderError({
          kind: 'config',
          message: `cursor column ${JSON.stringify(column.name)} is null in a row: cursor columns must be NOT NULL`,
        })
      return cursorValueFromText(column as ColumnInfo, text)
    }),
  } as PostgresContext
}

/** Inline the plan's `$n` parameters as literals (COPY takes none); quoted identifiers are left as they are. */
export function inlineParameters(sql: string, values: readonly (string | null)[]): string {
  let out = ''
  let i = 0
  while (i < sql.length) {
    const ch = sql[i]!
    if (ch === '"') {
      let end = i + 1
      for (;;) {
        end = sql.indexOf('"', end)
        if (end === -1) throw new Error('unterminated quoted identifier in a read plan')
        if (sql[end + 1] === '"') end += 2
        else break
      }
      out += sql.slice(i, end + 1)
      i = end + 1
      continue
    }
    if (ch === '$' && /[0-9]/.test(sql[i + 1] ?? '')) {
      let end = i + 1
      while (/[0-9]/.test(sql[end] ?? '')) end++
      const value = values[Number(sql.slice(i + 1, end)) - 1]
      if (value === undefined)
        throw new Error(`read plan parameter ${sql.slice(i, end)} has no value`)
      out += value === null ? 'NULL' : literal(value)
      i = end
      continue
    }
    out += ch
    i++
  }
  return out
}

/** A string literal PostgreSQL reads back as `text` whatever standard_conforming_strings says. */
function literal(text: string): string {
  if (text.includes('\u0000')) throw new Error('a parameter holds a NUL character')
  const quoted = text.replace(/'/g, "''")
  return text.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`
}

/**
 * Read a stream as COPY text in items of at most `wire.maxRows` rows and `wire.maxBytes` bytes
 * (a longer row is an item alone), each ending at a row's end and carrying that row's cursor.
 */
export async function* readWire(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  after: PostgresContext | undefined,
  wire: WireReadOptions,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<PostgresContext>, void, undefined> {
  const maxRows = Math.max(1, Math.floor(wire.maxRows))
  const maxBytes = Math.max(1, Math.floor(wire.maxBytes))
  const maxAgeMs = wire.maxAgeMs ?? Number.POSITIVE_INFINITY
  const client = await raceAbort(deps.acquire(), signal)
  let finished = false
  let broken = false
  try {
    const table = await raceAbort(describeTable(client, schema, stream.table), signal)
    if (!table) throw tableNotFound(schema, stream.table)
    const plan = planRead(table, stream, after)
    const columns = wireColumns(table, plan)
    if (!Array.isArray(columns))
      throw new ProviderError({
        kind: 'config',
        message: `stream ${JSON.stringify(stream.table)} cannot be read as ${COPY_TEXT}: ${columns.reason}`,
      })
    const copy = new CopyOut(`COPY (${inlineParameters(plan.sql, plan.values)}) TO STDOUT`, {
      maxRows,
      maxBytes,
      maxAgeMs,
    })
    client.query(copy)
    for (;;) {
      const rows = await raceAbort(copy.next(), signal)
      if (rows === undefined) break
      const context = lineContext(
        rows.bytes.toString('utf8', rows.lastRow, rows.bytes.length - 1),
        plan.cursor,
      )
      yield {
        data: {
          kind: 'record',
          values: {},
          wire: { format: COPY_TEXT, columns, rows: rows.rows, bytes: rows.bytes },
        },
        context,
      }
      if (signal.aborted) throw abortReason(signal)
    }
    finished = true
  } catch (error) {
    if (!ProviderError.isInstance(error) && !hasSqlState(error)) broken = true
    throw error
  } finally {
    // A COPY stopped before its end leaves the connection mid-protocol: drop it.
    client.release(finished && !broken ? undefined : true)
  }
}
