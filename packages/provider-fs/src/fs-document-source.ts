import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import {
  type DocumentData,
  exactNumberFields,
  type JsonObject,
  type ReadItem,
} from '@nvisy/provider-core'
import { dataError } from './fs-errors.js'
import type { FsDocumentContext, FsDocumentStream } from './fs-schemas.js'

export type FsDocumentRange = NonNullable<FsDocumentStream['range']>

const READ_CHUNK_BYTES = 256 * 1024
const NEWLINE = 0x0a

interface RawLine {
  /** The line's text (UTF-8 decoded, without its "\n"). */
  text: string
  /** The line's length in bytes (without its "\n"). */
  bytes: number
  /** Byte offset just after the line (after its '\n' when it has one). */
  end: number
  terminated: boolean
}

/**
 * Split a file into lines from byte `start`, keeping exact byte offsets. (readline cannot
 * give offsets: it hides whether a line ended in "\n" or "\r\n", or at end of file.) Yields
 * the lines of each chunk read together, each decoded straight from the chunk: one
 * await per 256 KiB, not per line, and no Buffer object per line.
 */
async function* rawLines(
  path: string,
  start: number,
  maxLineBytes: number,
  signal: AbortSignal,
): AsyncGenerator<RawLine[]> {
  const stream = createReadStream(path, { start, highWaterMark: READ_CHUNK_BYTES, signal })
  let parts: Buffer[] = []
  let pending = 0
  let position = start
  const tooLong = () =>
    dataError(`a line starting at byte ${position} of ${path} is longer than ${maxLineBytes} bytes`)
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const lines: RawLine[] = []
      let from = 0
      while (from < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, from)
        if (newline === -1) {
          parts.push(chunk.subarray(from))
          pending += chunk.length - from
          if (pending > maxLineBytes) throw tooLong()
          break
        }
        const length = pending + newline - from
        if (length > maxLineBytes) throw tooLong()
        // A line that started in an earlier chunk is joined first (a multi-byte character
        // may straddle the chunk boundary).
        const text =
          parts.length === 0
            ? chunk.toString('utf8', from, newline)
            : Buffer.concat([...parts, chunk.subarray(from, newline)]).toString('utf8')
        parts = []
        pending = 0
        position += length + 1
        lines.push({ text, bytes: length, end: position, terminated: true })
        from = newline + 1
      }
      if (lines.length > 0) yield lines
    }
    if (pending > 0) {
      const text = Buffer.concat(parts).toString('utf8')
      position += pending
      yield [{ text, bytes: pending, end: position, terminated: false }]
    }
  } finally {
    stream.destroy()
  }
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false
  }
  return true
}

/**
 * The id of a document: its `idField` value, a non-empty string or a number. A number is
 * written as JavaScript prints it, or as the line wrote it when JSON.parse does not hold it
 * exactly (its `rawJson` text: `9007199254740993` stays that, never `9007199254740992`).
 */
export function documentId(
  content: JsonObject,
  idField: string,
  rawJson?: Readonly<Record<string, string>>,
): string | undefined {
  const value = content[idField]
  if (typeof value === 'string' && value.length > 0) return value
  if (typeof value === 'number') {
    if (rawJson && Object.hasOwn(rawJson, idField)) return rawJson[idField]
    if (Number.isFinite(value)) return String(value)
  }
  return undefined
}

export interface JsonlScanState {
  /** The offset where reading stopped: end of file, or the start of a torn last line. */
  end: number
  /** True when the file ends in an unterminated line that is not a JSON object (a write in progress or torn). */
  torn: boolean
  /** The number of the last line read. */
  line: number
}

/**
 * The documents of a JSON Lines file after `after`, read line by line from the byte offset
 * the context holds (never from the start again). A last line without "\n" is yielded when
 * it is a whole JSON object, and left for the next read otherwise: a writer may be midway.
 */
export async function* readJsonl(
  path: string,
  label: string,
  idField: string,
  resumeAfter: FsDocumentContext | undefined,
  signal: AbortSignal,
  maxLineBytes: number,
  state: JsonlScanState = { end: 0, torn: false, line: 0 },
  range?: FsDocumentRange | undefined,
): AsyncGenerator<ReadItem<FsDocumentContext> & { data: DocumentData }> {
  // A range of lines (a partition) starts after the later of its lower bound and the context.
  const lower = range?.after
  const after =
    lower !== undefined && (resumeAfter === undefined || resumeAfter.offset < lower.offset)
      ? lower
      : resumeAfter
  const through = range?.through
  let line = after?.line ?? 0
  const start = after?.offset ?? 0
  state.end = start
  state.torn = false
  state.line = line
  let continuation = false
  if (start > 0) {
    const handle = await open(path, 'r')
    try {
      const { size } = await handle.stat()
      if (start > size) {
        throw dataError(
          `${label} has ${size} bytes, fewer than the resume offset ${start}: it was truncated or replaced since line ${line} was read`,
        )
      }
      // The context may point just after a last line that had no "\n" yet.
      const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, start - 1)
      continuation = bytesRead === 1 && buffer[0] !== NEWLINE
    } finally {
      await handle.close()
    }
  }
  for await (const lines of rawLines(path, start, maxLineBytes, signal)) {
    for (const raw of lines) {
      // Past the range's last line: the rest belongs to the next range.
      if (through !== undefined && raw.end > through.offset) return
      if (continuation) {
        // The rest of the line the context ended on: a "\n" the writer added after it.
        continuation = false
        if (!isBlank(raw.text)) {
          throw dataError(
            `${label}:${line} changed after it was read: text was appended to it without a newline`,
          )
        }
        state.end = raw.end
        continue
      }
      line++
      state.line = line
      let text = raw.text
      let size = raw.bytes
      // A UTF-8 byte order mark (EF BB BF) at the start of the file.
      if (line === 1 && text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1)
        size -= 3
      }
      if (isBlank(text)) {
        if (raw.terminated) state.end = raw.end
        continue
      }
      let content: unknown
      try {
        content = JSON.parse(text)
      } catch (error) {
        if (!raw.terminated) {
          state.torn = true
          state.line = line - 1
          return
        }
        throw dataError(`${label}:${line} is not valid JSON: ${(error as Error).message}`, error)
      }
      if (typeof content !== 'object' || content === null || Array.isArray(content)) {
        if (!raw.terminated) {
          state.torn = true
          state.line = line - 1
          return
        }
        throw dataError(`${label}:${line} is not a JSON object`)
      }
      // Numbers JSON.parse does not hold exactly keep their text (a quick scan finds them).
      let rawJson: Record<string, string> | undefined
      try {
        rawJson = exactNumberFields(text)
      } catch (error) {
        throw dataError(`${label}:${line} is not valid JSON: ${(error as Error).message}`, error)
      }
      const id = documentId(content as JsonObject, idField, rawJson)
      if (id === undefined) {
        throw dataError(
          `${label}:${line} has no "${idField}" field with a non-empty string or number id`,
        )
      }
      state.end = raw.end
      yield {
        data: rawJson
          ? { kind: 'document', id, content: content as JsonObject, rawJson, size }
          : { kind: 'document', id, content: content as JsonObject, size },
        context: { line, offset: raw.end },
      }
    }
  }
}
