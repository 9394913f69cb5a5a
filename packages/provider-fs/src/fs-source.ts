import { constants, createReadStream, type Dirent } from 'node:fs'
import { lstat, open, readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type BlobData,
  type DocumentData,
  exactNumberFields,
  type JsonObject,
  type Logger,
  type ReadItem,
  throwIfAborted,
} from '@nvisy/provider-core'
import mime from 'mime-types'
import picomatch from 'picomatch'
import { configError, dataError } from './fs-errors.js'
import {
  compareKeys,
  isReservedName,
  isWithin,
  relativePathProblem,
  sidecarName,
} from './fs-paths.js'
import type {
  FsBlobContext,
  FsBlobStream,
  FsDocumentContext,
  FsDocumentStream,
} from './fs-schemas.js'

const NO_FOLLOW = constants.O_NOFOLLOW ?? 0
const READ_CHUNK_BYTES = 256 * 1024

/** What a sidecar holds: the blob's content type and metadata, when they were written. */
export interface BlobSidecar {
  contentType?: string
  metadata?: Record<string, string>
}

export function contentTypeFor(key: string): string | undefined {
  const type = mime.lookup(key)
  return type === false ? undefined : type
}

interface Entry {
  name: string
  /** The name as it sorts among its siblings: a directory sorts as `name/`. */
  sortKey: string
  directory: boolean
  symlink: boolean
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

export function validateBlobStream(stream: FsBlobStream): void {
  if (stream.prefix !== undefined) {
    const problem = relativePathProblem(stream.prefix)
    if (problem) throw configError('/stream/prefix', 'path', problem)
  }
  if (stream.glob !== undefined) {
    try {
      picomatch.makeRe(stream.glob, { dot: true })
    } catch (error) {
      throw configError('/stream/glob', 'glob', `is not a valid glob: ${(error as Error).message}`)
    }
  }
}

/**
 * Every file under `root` as a blob, in byte-wise order of its '/'-separated key. Each
 * directory is listed and sorted on its own (a directory sorts as `name/`), which gives the
 * global key order without holding the whole tree. A resumed read skips every subtree that
 * sorts before `after.key` without listing it.
 */
export async function* readBlobs(
  realRoot: string,
  stream: FsBlobStream,
  after: FsBlobContext | undefined,
  signal: AbortSignal,
  logger: Logger,
): AsyncGenerator<ReadItem<FsBlobContext>> {
  validateBlobStream(stream)
  const prefix = stream.prefix ?? ''
  const matches = stream.glob ? picomatch(stream.glob, { dot: true }) : undefined
  // A key range (a partition) starts after the later of its lower bound and the context.
  const lower = stream.range?.after
  const afterKey =
    after?.key === undefined
      ? lower
      : lower === undefined || compareKeys(after.key, lower) > 0
        ? after.key
        : lower
  const upperKey = stream.range?.through
  // Set once a key past the range's upper bound is met: every later key sorts after it too.
  let pastRange = false

  async function* walk(dirPath: string, dirKey: string): AsyncGenerator<ReadItem<FsBlobContext>> {
    throwIfAborted(signal)
    let dirents: Dirent[]
    try {
      dirents = await readdir(dirPath, { withFileTypes: true })
    } catch (error) {
      // A folder removed while the walk was under way has nothing left to yield.
      if (dirKey !== '' && isMissing(error)) return
      throw error
    }
    const names = new Set<string>()
    const entries: Entry[] = []
    for (const dirent of dirents) {
      const name = dirent.name
      names.add(name)
      if (isReservedName(name)) continue
      let directory = dirent.isDirectory()
      let symlink = dirent.isSymbolicLink()
      if (!directory && !symlink && !dirent.isFile()) {
        // Some file systems do not report the type in the listing; ask for it.
        if (
          dirent.isBlockDevice() ||
          dirent.isCharacterDevice() ||
          dirent.isFIFO() ||
          dirent.isSocket()
        )
          continue
        try {
          const info = await lstat(join(dirPath, name))
          directory = info.isDirectory()
          symlink = info.isSymbolicLink()
          if (!directory && !symlink && !info.isFile()) continue
        } catch (error) {
          if (isMissing(error)) continue
          throw error
        }
      }
      entries.push({ name, sortKey: directory ? `${name}/` : name, directory, symlink })
    }
    entries.sort((a, b) => compareKeys(a.sortKey, b.sortKey))

    for (const entry of entries) {
      throwIfAborted(signal)
      if (pastRange) return
      const key = dirKey + entry.sortKey
      // Sorted siblings past the range's upper bound (a folder not leading to it) end the walk.
      if (upperKey !== undefined && compareKeys(key, upperKey) > 0) {
        pastRange = true
        return
      }
      // Sorted siblings past the prefix's range cannot match it again.
      if (
        prefix &&
        !key.startsWith(prefix) &&
        !prefix.startsWith(key) &&
        compareKeys(key, prefix) > 0
      )
        return
      if (entry.directory) {
        if (afterKey !== undefined && !afterKey.startsWith(key) && compareKeys(key, afterKey) < 0)
          continue
        if (prefix && !key.startsWith(prefix) && !prefix.startsWith(key)) continue
        yield* walk(join(dirPath, entry.name), key)
        if (pastRange) return
        continue
      }
      if (afterKey !== undefined && compareKeys(key, afterKey) <= 0) continue
      if (prefix && !key.startsWith(prefix)) continue
      if (matches && !matches(key)) continue
      const item = await blobItem(dirPath, entry, key, names)
      if (item) yield item
    }
  }

  async function blobItem(
    dirPath: string,
    entry: Entry,
    key: string,
    siblings: Set<string>,
  ): Promise<ReadItem<FsBlobContext> | undefined> {
    let path = join(dirPath, entry.name)
    try {
      if (entry.symlink) {
        // Follow a link only to a file inside the root; never out of it, never into a folder.
        const target = await realpath(path)
        if (!isWithin(realRoot, target)) {
          logger.warn(
            { key },
            `fs: skipping ${JSON.stringify(key)}: a symlink that points outside the root`,
          )
          return undefined
        }
        path = target
      }
      const info = entry.symlink ? await stat(path) : await lstat(path)
      if (!info.isFile()) return undefined
      const sidecar = siblings.has(sidecarName(entry.name))
        ? await readSidecar(join(dirPath, sidecarName(entry.name)), logger)
        : undefined
      const blob: BlobData = {
        kind: 'blob',
        key,
        body: fileBody(path, signal, info.size),
        size: info.size,
        lastModified: info.mtime,
        contentType:
          sidecar?.contentType ?? contentTypeFor(entry.name) ?? 'application/octet-stream',
      }
      if (sidecar?.metadata && Object.keys(sidecar.metadata).length > 0)
        blob.metadata = sidecar.metadata
      return { data: blob, context: { key } }
    } catch (error) {
      // Removed since the folder was listed (or a dangling link): not there to read.
      if (isMissing(error)) return undefined
      throw error
    }
  }

  yield* walk(realRoot, '')
}

/** Files up to this size (by their listing) are read in one call into one exact buffer. */
const WHOLE_READ_BYTES = 1024 * 1024

/**
 * A file's body as a lazy byte stream: the file is opened when the body is iterated (so
 * an item whose body is never read holds no descriptor). A small file is read whole into a
 * buffer of its size (no 256 KiB buffer per file); a larger one is read in chunks, never
 * whole. The abort signal is checked between reads rather than listened to: many bodies
 * read at once would otherwise each add a listener to the run's one signal.
 */
export function fileBody(
  path: string,
  signal: AbortSignal,
  size?: number,
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      return (async function* () {
        throwIfAborted(signal)
        // O_NOFOLLOW: a file swapped for a symlink since the listing is refused, not followed.
        const handle = await open(path, constants.O_RDONLY | NO_FOLLOW)
        try {
          if (size !== undefined && size <= WHOLE_READ_BYTES) {
            // readFile sizes its buffer from fstat and reads to the end, so a file that grew
            // or shrank since the listing is still read exactly as it is now.
            const bytes = await handle.readFile()
            throwIfAborted(signal)
            if (bytes.byteLength > 0) yield bytes
            return
          }
          const stream = handle.createReadStream({
            highWaterMark: READ_CHUNK_BYTES,
            autoClose: false,
          })
          try {
            for await (const chunk of stream as AsyncIterable<Buffer>) {
              throwIfAborted(signal)
              yield chunk
            }
          } finally {
            stream.destroy()
          }
        } finally {
          await handle.close().catch(() => {})
        }
      })()
    },
  }
}

export async function readSidecar(path: string, logger: Logger): Promise<BlobSidecar | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    const out: BlobSidecar = {}
    const { contentType, metadata } = parsed as Record<string, unknown>
    if (typeof contentType === 'string') out.contentType = contentType
    if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
      const clean: Record<string, string> = {}
      for (const [k, v] of Object.entries(metadata)) if (typeof v === 'string') clean[k] = v
      out.metadata = clean
    }
    return out
  } catch (error) {
    if (!isMissing(error))
      logger.warn(
        { path },
        `fs: ignoring an unreadable metadata sidecar: ${(error as Error).message}`,
      )
    return undefined
  }
}

// JSON Lines files as documents.

export type FsDocumentRange = NonNullable<FsDocumentStream['range']>

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
