import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { DocumentData, JsonObject, ReadItem } from '@nvisy/provider-core'
import { dataError } from './fs-errors.js'
import type { FsDocumentContext } from './fs-schemas.js'

const READ_CHUNK_BYTES = 256 * 1024
const NEWLINE = 0x0a

interface RawLine {
  bytes: Buffer
  /** Byte offset just after the line (after its '\n' when it has one). */
  end: number
  terminated: boolean
}

/**
 * Split a file into lines from byte `start`, keeping exact byte offsets. (readline cannot
 * give offsets: it hides whether a line ended in "\n" or "\r\n", or at end of file.)
 */
async function* rawLines(
  path: string,
  start: number,
  maxLineBytes: number,
  signal: AbortSignal,
): AsyncGenerator<RawLine> {
  const stream = createReadStream(path, { start, highWaterMark: READ_CHUNK_BYTES, signal })
  let parts: Buffer[] = []
  let pending = 0
  let position = start
  const tooLong = () =>
    dataError(`a line starting at byte ${position} of ${path} is longer than ${maxLineBytes} bytes`)
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let from = 0
      while (from < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, from)
        if (newline === -1) {
          parts.push(chunk.subarray(from))
          pending += chunk.length - from
          if (pending > maxLineBytes) throw tooLong()
          break
        }
        const piece = chunk.subarray(from, newline)
        if (pending + piece.length > maxLineBytes) throw tooLong()
        const bytes = parts.length === 0 ? piece : Buffer.concat([...parts, piece])
        parts = []
        pending = 0
        position += bytes.length + 1
        yield { bytes, end: position, terminated: true }
        from = newline + 1
      }
    }
    if (pending > 0) {
      const bytes = Buffer.concat(parts)
      position += bytes.length
      yield { bytes, end: position, terminated: false }
    }
  } finally {
    stream.destroy()
  }
}

function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false
  return true
}

/** The id of a document: its `idField` value, a non-empty string or a finite number. */
export function documentId(content: JsonObject, idField: string): string | undefined {
  const value = content[idField]
  if (typeof value === 'string' && value.length > 0) return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
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
  after: FsDocumentContext | undefined,
  signal: AbortSignal,
  maxLineBytes: number,
  state: JsonlScanState = { end: 0, torn: false, line: 0 },
): AsyncGenerator<ReadItem<FsDocumentContext> & { data: DocumentData }> {
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
  for await (const raw of rawLines(path, start, maxLineBytes, signal)) {
    if (continuation) {
      // The rest of the line the context ended on: a "\n" the writer added after it.
      continuation = false
      if (!isBlank(raw.bytes)) {
        throw dataError(
          `${label}:${line} changed after it was read: text was appended to it without a newline`,
        )
      }
      state.end = raw.end
      continue
    }
    line++
    state.line = line
    let bytes = raw.bytes
    if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
      bytes = bytes.subarray(3)
    if (isBlank(bytes)) {
      if (raw.terminated) state.end = raw.end
      continue
    }
    let content: unknown
    try {
      content = JSON.parse(bytes.toString('utf8'))
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
    const id = documentId(content as JsonObject, idField)
    if (id === undefined) {
      throw dataError(
        `${label}:${line} has no "${idField}" field with a non-empty string or number id`,
      )
    }
    state.end = raw.end
    yield {
      data: { kind: 'document', id, content: content as JsonObject, size: bytes.length },
      context: { line, offset: raw.end },
    }
  }
}
