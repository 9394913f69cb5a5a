import type { Duplex } from 'node:stream'
import type { Connection, Submittable } from 'pg'

/*
 * `COPY ... TO STDOUT` read straight off the connection's socket, into items of whole rows.
 *
 * pg-copy-streams' `to` stream (the usual way) makes a Buffer view per CopyData message, joins
 * them per socket read and hands each join to its consumer; with the server writing one row per
 * message and the consumer keeping up, socket reads hold a row or two each, so a copy of a
 * million rows made a million small Buffers, stream reads and promise turns, and cutting them
 * into items joined them again (measured on a 1M-row table: about 1 s of the reader's 1.8 s of
 * CPU). Here each socket read is parsed in place: every CopyData body is copied once into the
 * item being filled (a buffer of `maxBytes`), rows are counted by message (PostgreSQL sends
 * exactly one row per CopyData message in COPY TO, and each row ends with a newline, which is
 * checked), and an item is handed over when it is full, holds `maxRows` rows, or has waited
 * `maxAgeMs` and another row arrives. One item is read ahead while the consumer works on the
 * previous one; beyond that the socket is not read, so the server waits (TCP backpressure).
 *
 * The protocol handling follows pg-copy-streams (MIT): the client's `data` listener is removed
 * while the COPY runs and given back, with the bytes after CopyDone or from an ErrorResponse
 * on, so `pg` parses CommandComplete, ErrorResponse and ReadyForQuery itself and calls the
 * handlers below.
 */

const COPY_DATA = 0x64 // 'd'
const COPY_DONE = 0x63 // 'c'
const ERROR_RESPONSE = 0x45 // 'E'
const NEWLINE = 0x0a
const HEADER = 5 // a type byte and a 4-byte length that counts itself

/** Whole rows of COPY text: `rows` rows, the last of which starts at `lastRow`. */
export interface CopyRows {
  bytes: Buffer
  rows: number
  lastRow: number
}

export interface CopyOutLimits {
  maxRows: number
  maxBytes: number
  maxAgeMs: number
}

type Waiter = { resolve: () => void }

export class CopyOut implements Submittable {
  private stream: Duplex | undefined
  private pgData: ((chunk: Buffer) => void) | undefined
  private readonly ready: CopyRows[] = []
  private failure: Error | undefined
  /** The socket was given back to pg (after CopyDone or at an ErrorResponse). */
  private detached = false
  private finished = false
  private waiter: Waiter | undefined
  /** Rows handed over, and the server's count from CommandComplete. */
  private counted = 0
  private serverCount: number | undefined
  // Parser state: the header being read (it may span socket reads), then the body left.
  private readonly header = Buffer.alloc(HEADER)
  private headerHave = 0
  private code = 0
  private bodyLeft = 0
  private inBody = false
  // The item being filled.
  private buffer: Buffer | undefined
  private used = 0
  private rows = 0
  private rowStart = 0
  private lastRow = 0
  private since = 0

  constructor(
    readonly text: string,
    private readonly limits: CopyOutLimits,
  ) {}

  /** pg calls this when the query's turn comes; an error returned is passed to handleError. */
  submit(connection: Connection): Error | undefined {
    const stream = connection.stream
    const listeners = stream.listeners('data')
    if (listeners.length !== 1)
      return new Error(`the connection has ${listeners.length} data listeners, expected 1`)
    this.pgData = listeners[0] as (chunk: Buffer) => void
    stream.removeListener('data', this.pgData)
    stream.pause()
    this.stream = stream
    stream.on('readable', this.onReadable)
    connection.query(this.text)
    return undefined
  }

  /** The next item of whole rows, or undefined after the last (once the server said it is done). */
  async next(): Promise<CopyRows | undefined> {
    for (;;) {
      if (this.failure) throw this.failure
      const item = this.ready.shift()
      if (item) {
        // Fill the next item while this one is used.
        queueMicrotask(this.onReadable)
        return item
      }
      if (this.finished) {
        if (this.serverCount !== undefined && this.serverCount !== this.counted)
          throw new Error(
            `COPY sent ${this.serverCount} rows and ${this.counted} were read: the COPY text was cut or framed unexpectedly`,
          )
        return undefined
      }
      await new Promise<void>((resolve) => {
        this.waiter = { resolve }
      })
    }
  }

  handleError(error: Error): void {
    this.failure ??= error
    this.wake()
  }

  handleCommandComplete(message: { text?: string } | undefined): void {
    const match = /^COPY (\d+)$/.exec(message?.text ?? '')
    if (match) this.serverCount = Number(match[1])
  }

  handleReadyForQuery(): void {
    this.finished = true
    this.wake()
  }

  private wake(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.resolve()
  }

  private readonly onReadable = (): void => {
    const stream = this.stream
    if (!stream || this.detached || this.failure) return
    // At most one finished item waits for the consumer; then the socket is left unread.
    while (this.ready.length === 0 && !this.detached) {
      const chunk: Buffer | null = stream.read()
      if (chunk === null) break
      try {
        this.parse(chunk)
      } catch (error) {
        this.failure = error as Error
        // The rest of the COPY is not read: the caller drops the connection.
        stream.removeListener('readable', this.onReadable)
        break
      }
    }
    if (this.ready.length > 0 || this.failure) this.wake()
  }

  private parse(chunk: Buffer): void {
    const end = chunk.length
    const now = Date.now()
    let at = 0
    while (at < end) {
      if (!this.inBody && this.headerHave === 0 && this.rows > 0) at = this.rowsAt(chunk, at, now)
      if (at >= end) break
      if (!this.inBody) {
        let start = at
        if (this.headerHave === 0 && end - at >= HEADER) {
          this.code = chunk[at]!
          this.bodyLeft = chunk.readUInt32BE(at + 1) - 4
          at += HEADER
        } else {
          const take = Math.min(HEADER - this.headerHave, end - at)
          chunk.copy(this.header, this.headerHave, at, at + take)
          this.headerHave += take
          at += take
          if (this.headerHave < HEADER) return
          this.code = this.header[0]!
          this.bodyLeft = this.header.readUInt32BE(1) - 4
          start = -1
        }
        if (this.code === ERROR_RESPONSE) {
          // pg parses the error (and the ReadyForQuery after it) and calls handleError.
          const rest =
            start >= 0 ? chunk.subarray(start) : Buffer.concat([this.header, chunk.subarray(at)])
          this.headerHave = 0
          this.detach(rest)
          return
        }
        this.headerHave = 0
        if (this.code === COPY_DONE) {
          if (this.rows > 0) this.cut()
          this.detach(chunk.subarray(at + this.bodyLeft))
          return
        }
        if (this.code === COPY_DATA) this.startRow(now)
        this.inBody = true
      }
      const take = Math.min(this.bodyLeft, end - at)
      if (this.code === COPY_DATA) {
        chunk.copy(this.buffer!, this.used, at, at + take)
        this.used += take
      }
      at += take
      this.bodyLeft -= take
      if (this.bodyLeft === 0) {
        this.inBody = false
        if (this.code === COPY_DATA) this.endRow(now)
      }
    }
  }

  /**
   * The common case, kept small for the JIT: whole CopyData messages in `chunk` from `at` that
   * fit the item being filled and do not end it (the row that does goes the general way).
   * Returns where it stopped.
   */
  private rowsAt(chunk: Buffer, at: number, now: number): number {
    if (now - this.since >= this.limits.maxAgeMs) return at
    const buffer = this.buffer!
    const room = buffer.length
    const lastRows = this.limits.maxRows - 1
    const end = chunk.length
    let used = this.used
    let rows = this.rows
    let lastRow = this.lastRow
    while (end - at > HEADER && chunk[at] === COPY_DATA && rows < lastRows) {
      const size =
        ((chunk[at + 1]! << 24) | (chunk[at + 2]! << 16) | (chunk[at + 3]! << 8) | chunk[at + 4]!) -
        4
      const from = at + HEADER
      if (size <= 0 || from + size > end || used + size >= room) break
      chunk.copy(buffer, used, from, from + size)
      if (chunk[from + size - 1] !== NEWLINE) break // the general way says what is wrong
      lastRow = used
      used += size
      rows++
      at = from + size
    }
    this.used = used
    this.rows = rows
    this.lastRow = lastRow
    return at
  }

  /** Room for a row of `bodyLeft` bytes: the item is handed over first when it would not fit. */
  private startRow(now: number): void {
    const size = this.bodyLeft
    if (this.buffer && this.rows > 0 && this.used + size > this.buffer.length) this.cut()
    if (!this.buffer || this.used + size > this.buffer.length)
      this.buffer = Buffer.allocUnsafeSlow(Math.max(this.limits.maxBytes, size))
    if (this.rows === 0) this.since = now
    this.rowStart = this.used
  }

  private endRow(now: number): void {
    if (this.used === this.rowStart || this.buffer![this.used - 1] !== NEWLINE)
      throw new Error('a COPY row did not end with a newline: COPY text framed unexpectedly')
    this.lastRow = this.rowStart
    this.rows++
    if (
      this.rows >= this.limits.maxRows ||
      this.used >= this.limits.maxBytes ||
      now - this.since >= this.limits.maxAgeMs
    )
      this.cut()
  }

  /** Hand over the rows filled so far; a buffer less than half used is copied to its size. */
  private cut(): void {
    const buffer = this.buffer!
    let bytes: Buffer
    if (this.used * 2 < buffer.length) {
      // The copy goes; the buffer is filled again.
      bytes = Buffer.from(buffer.subarray(0, this.used))
    } else {
      bytes = buffer.subarray(0, this.used)
      this.buffer = undefined
    }
    this.ready.push({ bytes, rows: this.rows, lastRow: this.lastRow })
    this.counted += this.rows
    this.used = 0
    this.rows = 0
  }

  /** Give the socket back to pg, with the bytes it has to parse. */
  private detach(rest: Buffer): void {
    const stream = this.stream!
    this.detached = true
    stream.removeListener('readable', this.onReadable)
    stream.on('data', this.pgData!)
    if (rest.length > 0) this.pgData!(rest)
    // Removing the last `readable` listener does not resume a paused stream by itself.
    process.nextTick(() => stream.resume())
  }
}
