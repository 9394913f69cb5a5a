import { lstat, open, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { type BlobData, iterateBytes, ProviderError, throwIfAborted } from '@nvisy/provider-core'
import { type BlobSidecar, contentTypeFor } from './fs-blob-source.js'
import { type ConfinedDir, openConfinedDir } from './fs-confined.js'
import { dataError } from './fs-errors.js'
import { isTempName, keyProblem, sidecarName, tempName } from './fs-paths.js'

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
