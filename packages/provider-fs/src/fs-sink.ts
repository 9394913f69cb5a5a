import { type FileHandle, lstat, open, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type BlobData,
  type Data,
  type DocumentData,
  documentJson,
  iterateBytes,
  type Logger,
  ProviderError,
  throwIfAborted,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import { type ConfinedDir, handlePath, openConfinedDir, openForAppend } from './fs-confined.js'
import { dataError } from './fs-errors.js'
import { isTempName, keyProblem, sidecarName, tempName } from './fs-paths.js'
import { type BlobSidecar, contentTypeFor, type JsonlScanState, readJsonl } from './fs-source.js'

/**
 * Write one blob atomically: the body streams into a hidden temporary file in the target's
 * own folder, is fsynced, then renamed over the target. A reader sees the old file or the
 * new one, never a part. The same key written twice leaves one file (the last body).
 *
 * Content type and metadata go to a hidden sidecar `.<name>.nvisy-meta.json` only when
 * there is something the file itself cannot say: metadata, or a content type other than
 * the one its extension gives. A blob written without either has its old sidecar removed.
 * The folder is fsynced after the rename (or, with `syncLater`, by the caller once for the
 * batch), so the new name survives a power loss once the write has returned.
 */
export async function writeBlob(
  realRoot: string,
  prefix: string,
  blob: BlobData,
  signal: AbortSignal,
  /** Folders opened (without following symlinks) for this batch; the caller closes them. */
  directories: Map<string, Promise<ConfinedDir>>,
  /** Folders to fsync once the whole batch is renamed (one fsync per folder, not per file). */
  syncLater?: Set<ConfinedDir>,
): Promise<void> {
  if (typeof blob.key !== 'string') throw dataError('blob key must be a string')
  const key = prefix + blob.key
  const problem = keyProblem(key)
  if (problem) throw dataError(`blob key ${JSON.stringify(key)} ${problem}`)
  const segments = key.split('/')
  const name = segments.pop()!
  const folder = segments.join('/')
  let opening = directories.get(folder)
  if (!opening) {
    opening = openConfinedDir(realRoot, segments, `blob ${JSON.stringify(key)}`, true)
    directories.set(folder, opening)
    // A failed folder is not cached: the next item retries it.
    opening.catch(() => {
      if (directories.get(folder) === opening) directories.delete(folder)
    })
  }
  const dir = await opening.catch((error: unknown) => {
    // The message names the first key that opened the folder: name this one.
    if (ProviderError.isInstance(error) && error.kind === 'data' && !error.message.includes(key))
      throw dataError(`blob ${JSON.stringify(key)}: ${error.message}`, error)
    throw error
  })
  // Every path below names an entry of the open folder itself (dir.at): the rename of the
  // temporary file replaces whatever is at the key, a symlink included, and never follows it.
  const target = dir.at(name)
  const existing = await lstat(target).catch(() => undefined)
  if (existing?.isDirectory()) throw dataError(`blob key ${JSON.stringify(key)} names a folder`)

  const sidecar: BlobSidecar = {}
  if (blob.contentType && blob.contentType !== contentTypeFor(name))
    sidecar.contentType = blob.contentType
  if (blob.metadata && Object.keys(blob.metadata).length > 0)
    sidecar.metadata = { ...blob.metadata }
  const needsSidecar = sidecar.contentType !== undefined || sidecar.metadata !== undefined

  throwIfAborted(signal)
  const temp = dir.at(tempName(name))
  await writeFileAtomically(temp, target, blob, signal, async () => {
    const sidecarPath = dir.at(sidecarName(name))
    if (needsSidecar) {
      const sidecarTemp = dir.at(tempName(sidecarName(name)))
      await writeFileAtomically(
        sidecarTemp,
        sidecarPath,
        Buffer.from(JSON.stringify(sidecar)),
        signal,
      )
    } else {
      await unlink(sidecarPath).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error
      })
    }
  })
  if (syncLater) syncLater.add(dir)
  else await dir.sync()
}

async function writeFileAtomically(
  temp: string,
  target: string,
  source: BlobData | Buffer,
  signal: AbortSignal,
  beforeRename?: () => Promise<void>,
): Promise<number> {
  const handle = await open(temp, 'wx', 0o666)
  let renamed = false
  let bytes = 0
  try {
    try {
      const body = Buffer.isBuffer(source) ? source : source.body
      for await (const chunk of iterateBytes(body)) {
        throwIfAborted(signal)
        let offset = 0
        while (offset < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
          offset += bytesWritten
        }
        bytes += chunk.byteLength
      }
      if (!Buffer.isBuffer(source)) {
        if (source.size !== undefined && bytes !== source.size) {
          // A body cut short (a dropped download) is worth another try; never store it.
          throw new ProviderError({
            kind: 'transient',
            message: `blob ${JSON.stringify(source.key)}: the body had ${bytes} bytes, not the declared ${source.size}`,
          })
        }
        if (source.lastModified instanceof Date && !Number.isNaN(source.lastModified.getTime())) {
          await handle.utimes(new Date(), source.lastModified)
        }
      }
      await handle.sync()
    } finally {
      await handle.close()
    }
    throwIfAborted(signal)
    await beforeRename?.()
    await rename(temp, target)
    renamed = true
    return bytes
  } finally {
    if (!renamed) await unlink(temp).catch(() => {})
  }
}

/** Temporary files untouched for this long are left over from a killed write. */
export const STALE_TEMP_MS = 60 * 60 * 1000

/**
 * Remove the temporary files a killed process left in `dir` (a write in flight when it was
 * SIGKILLed): only this provider's `.<name>.nvisy-<16 hex>.tmp` names, and only those not
 * modified for `staleMs` (a write in progress keeps touching its file). Returns how many
 * were removed; failures are ignored (another writer may remove the same file).
 */
export async function removeStaleTemps(
  dir: ConfinedDir | string,
  staleMs: number = STALE_TEMP_MS,
  now: number = Date.now(),
): Promise<number> {
  const at = (name: string) => (typeof dir === 'string' ? join(dir, name) : dir.at(name))
  let names: string[]
  try {
    names = await readdir(typeof dir === 'string' ? dir : dir.path)
  } catch {
    return 0
  }
  let removed = 0
  for (const name of names) {
    if (!isTempName(name)) continue
    const path = at(name)
    const info = await lstat(path).catch(() => undefined)
    if (!info?.isFile() || now - info.mtimeMs < staleMs) continue
    if (
      await unlink(path).then(
        () => true,
        () => false,
      )
    )
      removed++
  }
  return removed
}

// Documents appended to JSON Lines files.

/** The ids already in a JSONL file, and how far the file had been scanned for them. */
export interface IdIndex {
  ids: Set<string>
  size: number
  ino: number
  mtimeMs: number
  line: number
}

/** Appends to one file never interleave within this process. */
const fileLocks = new Map<string, Promise<unknown>>()

async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const previous = fileLocks.get(path) ?? Promise.resolve()
  const run = previous.catch(() => {}).then(fn)
  fileLocks.set(path, run)
  try {
    return await run
  } finally {
    if (fileLocks.get(path) === run) fileLocks.delete(path)
  }
}

/**
 * Append documents to a JSON Lines file, idempotent by id: a document whose id is already
 * in the file (or earlier in the batch) is not written again and counts as written. The
 * first copy of an id wins; the file is an append-only log, never rewritten.
 *
 * The ids are indexed once per connection by scanning the file, then kept up to date from
 * this connection's appends and by scanning only what others appended since (the file's
 * size grew, same inode). A torn last line left by a crash is truncated before appending.
 */
export async function appendDocuments(
  target: {
    /** Where the file is (its real path when opened): the key of the lock and the id index. */
    key: string
    dir: ConfinedDir
    name: string
  },
  label: string,
  idField: string,
  batch: readonly Data[],
  signal: AbortSignal,
  options: { maxLineBytes: number; indexes: Map<string, IdIndex>; logger: Logger },
): Promise<WriteResult> {
  return withFileLock(target.key, async () => {
    // Opened (created) first, without following a symlink, and used by descriptor from here on:
    // the scan, the torn-line truncation and the append all reach this one file.
    const handle = await openForAppend(target.dir, target.name, `file ${JSON.stringify(label)}`)
    try {
      const path = handlePath(handle, target.dir.at(target.name))
      const index = await refreshIndex(handle, path, target.key, label, idField, signal, options)
      const failed: WriteFailure[] = []
      const lines: Buffer[] = []
      const added: string[] = []
      let written = 0
      const inBatch = new Set<string>()
      batch.forEach((item, i) => {
        try {
          const line = serializeDocument(item as DocumentData, idField, options.maxLineBytes)
          const id = (item as DocumentData).id
          written++
          if (index.ids.has(id) || inBatch.has(id)) return
          inBatch.add(id)
          added.push(id)
          lines.push(line)
        } catch (error) {
          failed.push({ index: i, error: error as ProviderError })
        }
      })
      if (lines.length === 0) return { written, failed }
      throwIfAborted(signal)
      const { size } = await handle.stat()
      let prefix = Buffer.alloc(0)
      if (size > 0) {
        // A last line written without "\n" (by hand) still ends before ours begins.
        const { buffer } = await handle.read(Buffer.alloc(1), 0, 1, size - 1)
        if (buffer[0] !== 0x0a) prefix = Buffer.from('\n')
      }
      const data = Buffer.concat([prefix, ...lines])
      let offset = 0
      while (offset < data.length) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset)
        offset += bytesWritten
      }
      await handle.sync()
      const after = await handle.stat()
      index.size = after.size
      index.ino = after.ino
      index.mtimeMs = after.mtimeMs
      index.line += lines.length
      // A new file's name must survive a power loss too.
      if (size === 0) await target.dir.sync()
      for (const id of added) index.ids.add(id)
      return { written, failed }
    } finally {
      await handle.close()
    }
  })
}

/** One document as a JSONL line, with its id in `idField`; fields with exact JSON text (`rawJson`) verbatim. */
export function serializeDocument(
  item: DocumentData,
  idField: string,
  maxLineBytes: number,
): Buffer {
  const label = `document ${JSON.stringify(item?.id)}`
  if (typeof item.id !== 'string' || item.id.length === 0)
    throw dataError(`${label}: the id must be a non-empty string`)
  const content = item.content
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw dataError(`${label}: content must be a JSON object`)
  }
  const own = content[idField]
  // A number id JSON.parse does not hold exactly is compared as written (its rawJson text).
  const ownText =
    typeof own === 'number' && item.rawJson && Object.hasOwn(item.rawJson, idField)
      ? item.rawJson[idField]!.trim()
      : String(own)
  if (own !== undefined && own !== null && ownText !== item.id) {
    throw dataError(`${label}: content.${idField} is ${JSON.stringify(own)}, not the document id`)
  }
  let text: string | undefined
  try {
    text = documentJson(
      own === undefined || own === null ? { [idField]: item.id, ...content } : content,
      item.rawJson,
    )
  } catch (error) {
    throw dataError(`${label}: content is not JSON: ${(error as Error).message}`, error)
  }
  if (text === undefined) throw dataError(`${label}: content is not JSON`)
  const line = Buffer.from(`${text}\n`, 'utf8')
  if (line.length > maxLineBytes)
    throw dataError(`${label}: ${line.length} bytes is over the ${maxLineBytes}-byte line limit`)
  return line
}

async function refreshIndex(
  handle: FileHandle,
  path: string,
  key: string,
  label: string,
  idField: string,
  signal: AbortSignal,
  options: { maxLineBytes: number; indexes: Map<string, IdIndex>; logger: Logger },
): Promise<IdIndex> {
  const info = await handle.stat()
  const indexKey = `${key}\0${idField}`
  let index = options.indexes.get(indexKey)
  if (
    index &&
    index.ino === info.ino &&
    index.size === info.size &&
    index.mtimeMs === info.mtimeMs
  ) {
    return index
  }
  // Scan only what was appended since, when the file only grew; else from the start.
  const resume = index && index.ino === info.ino && index.size > 0 && info.size > index.size
  if (!index || !resume) index = { ids: new Set(), size: 0, ino: info.ino, mtimeMs: 0, line: 0 }
  const state: JsonlScanState = { end: 0, torn: false, line: 0 }
  const after = resume ? { line: index.line, offset: index.size } : undefined
  try {
    for await (const item of readJsonl(
      path,
      label,
      idField,
      after,
      signal,
      options.maxLineBytes,
      state,
    )) {
      index.ids.add(item.data.id)
    }
    index.line = state.line
  } catch (error) {
    if (ProviderError.isInstance(error)) {
      throw new ProviderError({
        kind: 'data',
        message: `cannot append to ${label}: ${error.message}`,
        cause: error,
      })
    }
    throw error
  }
  if (state.torn) {
    options.logger.warn(
      { file: label },
      `fs: truncating a torn last line of ${label} at byte ${state.end}`,
    )
    await handle.truncate(state.end)
  }
  const now = await handle.stat()
  index.size = now.size
  index.ino = now.ino
  index.mtimeMs = now.mtimeMs
  options.indexes.set(indexKey, index)
  return index
}
