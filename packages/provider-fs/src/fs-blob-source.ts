import { constants, type Dirent } from 'node:fs'
import { lstat, open, readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type BlobData, type Logger, type ReadItem, throwIfAborted } from '@nvisy/provider-core'
import mime from 'mime-types'
import picomatch from 'picomatch'
import { configError } from './fs-errors.js'
import {
  compareKeys,
  isReservedName,
  isWithin,
  relativePathProblem,
  sidecarName,
} from './fs-paths.js'
import type { FsBlobContext, FsBlobStream } from './fs-schemas.js'

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
