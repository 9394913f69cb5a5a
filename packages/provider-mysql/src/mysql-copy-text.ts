import {
  abortReason,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  throwIfAborted,
  type WireOffer,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { MysqlClient } from './mysql-client.js'
import { describeTable } from './mysql-prepare.js'
import type { MysqlContext, MysqlStream } from './mysql-schemas.js'
import {
  checkContext,
  compileItemBuilder,
  pageSql,
  planRead,
  type ReadPlan,
} from './mysql-source.js'
import { INTEGER_BITS } from './mysql-types.js'
import type { ColumnInfo, CursorValue } from './mysql-values.js'

/*
 * Rows as PostgreSQL COPY text, built from the bytes of MySQL's text protocol without
 * decoding a value (pgloader's way): a row packet is a list of length-prefixed fields, each
 * the server's own text of its value. For the types below that text is also text PostgreSQL's
 * COPY parses to the same value (integers and decimals as plain digits; DATE, DATETIME and
 * TIMESTAMP as 'YYYY-MM-DD hh:mm:ss[.ffffff]' in the session's UTC; character and JSON
 * columns in the connection's utf8mb4), so a field is copied as it is, with COPY's escapes
 * (backslash, tab, newline, carriage return) in character and JSON fields and \N for NULL.
 *
 * The offer says which columns those are and their portable types; the PostgreSQL sink takes
 * the text only when each destination column holds every value of the source's type exactly
 * (no rounding, no truncation: see provider-postgres's acceptWire), else the rows go in
 * `nvisy-columns` batches. Zero dates are found in the bytes and handled as a row-by-row read
 * handles them (a `data` error naming the row, or NULL with zeroDates: "null"). Items carry
 * the context of their last row, computed from that row by the row-by-row read's own code
 * (mysql2's parser and the item builder), so either kind of read resumes the other.
 */

/** The wire format, as the PostgreSQL provider names it. */
export const POSTGRES_COPY_TEXT = 'postgresql-copy-text'

/** How a field's bytes become COPY text. */
const PLAIN = 0 // copied as they are: digits, signs, points
const ESCAPED = 1 // character data: COPY's escapes
const TEMPORAL = 2 // copied as they are, after a look for a zero month or day

const CHARACTER_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext'])
const TEMPORAL_TYPES = new Set(['date', 'datetime', 'timestamp'])

/** How a column's text is copied, or why it cannot be (a reason, after the column's name). */
function fieldKind(column: ColumnInfo, stream: MysqlStream): number | string {
  if (column.json) return ESCAPED
  if (Object.hasOwn(INTEGER_BITS, column.dataType)) {
    if (
      column.dataType === 'tinyint' &&
      (stream.tinyint1AsBoolean ?? false) &&
      /^tinyint\(1\)/.test(column.columnType)
    )
      return 'is read as a boolean (tinyint1AsBoolean)'
    return PLAIN
  }
  if (column.dataType === 'decimal' || column.dataType === 'numeric') return PLAIN
  if (TEMPORAL_TYPES.has(column.dataType)) return TEMPORAL
  if (CHARACTER_TYPES.has(column.dataType)) return ESCAPED
  return `is ${column.columnType}, whose values are converted one by one`
}

function kindsOf(plan: ReadPlan, stream: MysqlStream): number[] | { reason: string } {
  const kinds: number[] = []
  for (let i = 0; i < plan.outputCount; i++) {
    const kind = fieldKind(plan.selected[i]!, stream)
    if (typeof kind === 'string')
      return { reason: `column ${JSON.stringify(plan.names[i])} ${kind}` }
    kinds.push(kind)
  }
  return kinds
}

/** `wireOffer` for COPY text: the output columns and their types, or why not. */
export async function copyTextOffer(
  client: MysqlClient,
  stream: MysqlStream,
  signal: AbortSignal,
): Promise<WireOffer | { reason: string }> {
  const plan = await planRead(client, stream, signal)
  const kinds = kindsOf(plan, stream)
  if (!Array.isArray(kinds)) return kinds
  return {
    format: POSTGRES_COPY_TEXT,
    columns: plan.names.slice(0, plan.outputCount),
    schema: await describeTable(client, stream, signal),
  }
}

/** Per byte: the letter after the backslash COPY text writes for it, or 0 (as it is). */
const ESCAPE = new Uint8Array(256)
ESCAPE[0x5c] = 0x5c // \\
ESCAPE[0x0a] = 0x6e // \n
ESCAPE[0x0d] = 0x72 // \r
ESCAPE[0x09] = 0x74 // \t

/** mysql2's packet, as its parser hands it over (reused for the next packet once handled). */
interface Packet {
  buffer: Buffer
  start: number
  offset: number
  end: number
}
/** A result column as mysql2 describes it: the encoding its text arrives in. */
interface ResultField {
  encoding?: string
}
/** mysql2's row parser for a query's fields. */
interface RowParser {
  next(packet: Packet, fields: unknown, options: unknown): unknown[]
}
/** The parts of mysql2's connection a read drives. */
interface RawConnection {
  query(options: { sql: string; rowsAsArray: boolean }): NodeJS.EventEmitter
  pause(): void
  resume(): void
}

/** Ready items a read holds before it pauses the socket (the consumer is behind). */
const READY_HIGH = 2
/** The first item's buffer; later ones start at the size the previous item reached. */
const FIRST_CAPACITY = 64 * 1024

const ROW = true

/**
 * Turns row packets into COPY text and cuts it into items. It stands in for mysql2's row
 * parser of each page's query (`next` is called once per row packet), keeps a copy of the
 * last row's packet for its context, and pauses the connection while items wait.
 */
class CopyTextRows {
  #out: Buffer = Buffer.allocUnsafe(FIRST_CAPACITY)
  #pos = 0
  #rows = 0
  #since = 0
  /** The last row's packet, copied (the parser reuses its packet). */
  #last: Buffer = Buffer.allocUnsafe(1024)
  #lastLength = 0
  #lastPayload = 0
  #lastPacket: Packet | undefined
  #fields: unknown
  #options: unknown
  #connection: RawConnection | undefined
  #paused = false
  readonly ready: ReadItem<MysqlContext>[] = []
  /** mysql2's own parser for this page's fields (for contexts and error messages). */
  parser: RowParser | undefined
  failure: unknown
  pageRows = 0
  wake: (() => void) | undefined
  readonly #maxRows: number
  readonly #maxBytes: number
  readonly #maxAgeMs: number

  constructor(
    readonly kinds: readonly number[],
    readonly plan: ReadPlan,
    readonly build: (row: unknown[]) => ReadItem<MysqlContext>,
    wire: WireReadOptions,
  ) {
    this.#maxRows = Math.max(1, Math.floor(wire.maxRows))
    this.#maxBytes = Math.max(1, Math.floor(wire.maxBytes))
    this.#maxAgeMs = wire.maxAgeMs ?? Number.POSITIVE_INFINITY
  }

  /** A new page's query: its connection and parser. */
  page(connection: RawConnection): void {
    this.#connection = connection
    this.#paused = false
    this.parser = undefined
    this.pageRows = 0
  }

  /** The next ready item, resuming the connection when the queue has room again. */
  take(): ReadItem<MysqlContext> | undefined {
    const item = this.ready.shift()
    if (item && this.#paused && this.ready.length < READY_HIGH) {
      this.#paused = false
      this.#connection?.resume()
    }
    return item
  }

  /** mysql2's row parser interface: one row packet. Never throws into mysql2. */
  next(packet: Packet, fields: unknown, options: unknown): unknown {
    if (this.failure !== undefined) return ROW
    try {
      if (fields !== this.#fields) this.#checkFields(fields as readonly ResultField[])
      this.#fields = fields
      this.#options = options
      this.#row(packet)
    } catch (error) {
      this.failure = error
      this.#pause()
    }
    this.notify()
    return ROW
  }

  /** Character data must arrive as UTF-8: the bytes become COPY text as they are. */
  #checkFields(fields: readonly ResultField[]): void {
    for (let i = 0; i < this.kinds.length; i++) {
      const encoding = fields[i]?.encoding
      if (this.kinds[i] === ESCAPED && encoding !== 'utf8' && encoding !== 'cesu8')
        throw new ProviderError({
          kind: 'config',
          message: `column ${JSON.stringify(this.plan.names[i])} arrives in the connection's character set ${encoding ?? 'unknown'}, not UTF-8: COPY text needs a pool with charset utf8mb4 (or set options.passThrough: false)`,
        })
    }
  }

  /** Wake the read waiting for an item, an end or a failure. */
  notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  #pause(): void {
    if (this.#paused) return
    this.#paused = true
    this.#connection?.pause()
  }

  #row(packet: Packet): void {
    const buf = packet.buffer
    const payload = packet.offset
    const end = packet.end
    const kinds = this.kinds
    const count = kinds.length
    // The most a row can take: every byte escaped, \N or a separator per field, a newline.
    const need = this.#pos + 2 * (end - payload) + 3 * count + 1
    if (need > this.#out.length) this.#grow(need)
    const out = this.#out
    let pos = this.#pos
    let p = payload
    for (let i = 0; i < count; i++) {
      if (i > 0) out[pos++] = 0x09
      let len = buf[p++]!
      if (len === 0xfb) {
        out[pos++] = 0x5c
        out[pos++] = 0x4e
        continue
      }
      if (len >= 0xfc) {
        if (len === 0xfc) {
          len = buf[p]! | (buf[p + 1]! << 8)
          p += 2
        } else if (len === 0xfd) {
          len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16)
          p += 3
        } else {
          len = buf.readUInt32LE(p) + buf.readUInt32LE(p + 4) * 2 ** 32
          p += 8
        }
      }
      const stop = p + len
      const kind = kinds[i]
      if (kind === ESCAPED) {
        for (; p < stop; p++) {
          const b = buf[p]!
          const e = ESCAPE[b]!
          if (e === 0) out[pos++] = b
          else {
            out[pos++] = 0x5c
            out[pos++] = e
          }
        }
        continue
      }
      if (
        kind === TEMPORAL &&
        len >= 10 &&
        ((buf[p + 5] === 0x30 && buf[p + 6] === 0x30) ||
          (buf[p + 8] === 0x30 && buf[p + 9] === 0x30))
      ) {
        // A zero month or day: what the row-by-row read's decoder makes of it (an error
        // naming the row, or null), from mysql2's own row.
        packet.offset = payload
        const row = this.parser!.next(packet, this.#fields, this.#options)
        const value = this.plan.decoders[i]!(row[i], row)
        if (value !== null)
          throw new ProviderError({
            kind: 'internal',
            message: `column ${JSON.stringify(this.plan.names[i])}: a zero date decoded to a value`,
          })
        out[pos++] = 0x5c
        out[pos++] = 0x4e
        p = stop
        continue
      }
      if (len > 32) {
        buf.copy(out, pos, p, stop)
        pos += len
        p = stop
      } else for (; p < stop; p++) out[pos++] = buf[p]!
    }
    out[pos++] = 0x0a
    this.#pos = pos
    // Keep this row's packet: the last one of an item or a page gives the context.
    const length = end - packet.start
    if (length > this.#last.length)
      this.#last = Buffer.allocUnsafe(Math.max(length, this.#last.length * 2))
    buf.copy(this.#last, 0, packet.start, end)
    this.#lastLength = length
    this.#lastPayload = payload - packet.start
    if (this.#lastPacket === undefined || this.#lastPacket.buffer !== this.#last) {
      const PacketClass = packet.constructor as new (
        id: number,
        buffer: Buffer,
        start: number,
        end: number,
      ) => Packet
      this.#lastPacket = new PacketClass(0, this.#last, 0, length)
    }
    this.pageRows++
    if (this.#rows++ === 0) this.#since = Date.now()
    if (
      this.#rows >= this.#maxRows ||
      pos >= this.#maxBytes ||
      ((this.#rows & 255) === 0 && Date.now() - this.#since >= this.#maxAgeMs)
    ) {
      this.ready.push(this.#cut())
      if (this.ready.length >= READY_HIGH) this.#pause()
    }
  }

  #grow(need: number): void {
    const grown = Buffer.allocUnsafe(Math.max(need, this.#out.length * 2))
    this.#out.copy(grown, 0, 0, this.#pos)
    this.#out = grown
  }

  /** The context of the last row read (the row-by-row read's, from mysql2's row). */
  lastContext(): MysqlContext {
    const packet = this.#lastPacket!
    packet.start = 0
    packet.offset = this.#lastPayload
    packet.end = this.#lastLength
    return this.build(this.parser!.next(packet, this.#fields, this.#options)).context
  }

  #cut(): ReadItem<MysqlContext> {
    const size = this.#pos
    let bytes: Buffer
    if (size >= this.#out.length * 0.75) {
      // Mostly full: hand the buffer over and start a new one of the same size (no larger
      // than an item needs: a single huge row does not make every later buffer huge).
      bytes = this.#out.subarray(0, size)
      this.#out = Buffer.allocUnsafe(
        Math.min(
          this.#out.length,
          Math.max(FIRST_CAPACITY, this.#maxBytes + (this.#maxBytes >> 2)),
        ),
      )
    } else {
      bytes = Buffer.allocUnsafe(size)
      this.#out.copy(bytes, 0, 0, size)
    }
    const item: ReadItem<MysqlContext> = {
      data: {
        kind: 'record',
        values: {},
        wire: {
          format: POSTGRES_COPY_TEXT,
          columns: this.plan.names.slice(0, this.plan.outputCount),
          rows: this.#rows,
          bytes,
          size,
        },
      },
      context: this.lastContext(),
    }
    this.#pos = 0
    this.#rows = 0
    return item
  }

  /** The rows not yet in an item, as the last one. */
  flush(): ReadItem<MysqlContext> | undefined {
    return this.#rows > 0 ? this.#cut() : undefined
  }
}

/** Read a stream as COPY text items (see above), page by page in keyset order. */
export async function* readCopyText(
  client: MysqlClient,
  stream: MysqlStream,
  options: ReadOptions<MysqlContext>,
  wire: WireReadOptions,
): AsyncGenerator<ReadItem<MysqlContext>, void, undefined> {
  const { signal } = options
  const plan = await planRead(client, stream, signal)
  const kinds = kindsOf(plan, stream)
  if (!Array.isArray(kinds))
    throw new ProviderError({
      kind: 'config',
      message: `this stream cannot be read as ${POSTGRES_COPY_TEXT}: ${kinds.reason}`,
    })
  const build = compileItemBuilder(
    plan,
    plan.cursor.map((c) => c.name),
  )
  const rows = new CopyTextRows(kinds, plan, build, wire)
  let position: CursorValue[] | undefined = options.after
    ? checkContext(plan, options.after)
    : undefined
  for (;;) {
    throwIfAborted(signal)
    const connection = await client.acquire(signal)
    const raw = ((connection as any).connection ?? connection) as RawConnection
    let drained = false
    let ended = false
    let failure: unknown
    const onAbort = () => {
      failure ??= abortReason(signal)
      rows.notify()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      rows.page(raw)
      const query = raw.query({ sql: pageSql(plan, position), rowsAsArray: true })
      // This read parses the rows itself: mysql2 sets its parser once the fields are known;
      // it is kept for contexts, and each row packet comes here instead.
      Object.defineProperty(query, '_rowParser', {
        configurable: true,
        get: () => rows,
        set: (parser: RowParser | null) => {
          if (parser) rows.parser = parser
        },
      })
      query.on('error', (error: unknown) => {
        failure ??= error
        rows.notify()
      })
      query.on('end', () => {
        ended = true
        rows.notify()
      })
      for (;;) {
        // An abort or a failed query ends the read at once; a row this read could not turn
        // into text ends it after the rows before it, as a row-by-row read does.
        if (failure !== undefined) throw failure
        const item = rows.take()
        if (item) {
          yield item
          continue
        }
        if (rows.failure !== undefined) throw rows.failure
        if (ended) break
        await new Promise<void>((resolve) => {
          rows.wake = resolve
        })
      }
      drained = true
    } finally {
      signal.removeEventListener('abort', onAbort)
      // A result set left half-read would poison the connection: close it instead.
      if (drained) connection.release()
      else connection.destroy()
    }
    if (rows.pageRows < plan.pageSize) break
    // The next page starts after the last row of this one.
    position = rows.lastContext().values
  }
  const last = rows.flush()
  if (last) yield last
}
