import { lstat, mkdir, open, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { dataError } from './fs-errors.js'
import { isWithin } from './fs-paths.js'

/**
 * The real path of folder `segments` under `realRoot`, created one level at a time. A level
 * that is a symlink is accepted only when it resolves to a folder inside the root, so a
 * write never creates or touches anything outside it (`mkdir -p` would follow the link).
 */
export async function ensureDirectory(
  realRoot: string,
  segments: readonly string[],
  what: string,
  cache?: Map<string, Promise<string>>,
): Promise<string> {
  const cacheKey = segments.join('/')
  const cached = cache?.get(cacheKey)
  if (cached) return cached
  const made = (async () => {
    let current = realRoot
    for (let depth = 0; depth < segments.length; depth++) {
      const next = join(current, segments[depth]!)
      const shown = segments.slice(0, depth + 1).join('/')
      let info = await lstat(next).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined
        throw error
      })
      if (!info) {
        await mkdir(next).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error
        })
        info = await lstat(next)
      }
      if (info.isSymbolicLink()) {
        const target = await realpath(next).catch(() => undefined)
        if (!target || !isWithin(realRoot, target)) {
          throw dataError(
            `${what}: folder ${JSON.stringify(shown)} is a symlink that leads outside the root`,
          )
        }
        const targetInfo = await lstat(target)
        if (!targetInfo.isDirectory())
          throw dataError(`${what}: ${JSON.stringify(shown)} is not a folder`)
        current = target
      } else if (info.isDirectory()) {
        current = next
      } else {
        throw dataError(`${what}: ${JSON.stringify(shown)} is a file, not a folder`)
      }
    }
    return current
  })()
  cache?.set(cacheKey, made)
  // A failed level is not cached: the next item retries it.
  made.catch(() => cache?.delete(cacheKey))
  return made
}

/** Make a rename or a new file in `dir` durable. Not every platform can fsync a folder. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch {
    // EISDIR/EPERM/EINVAL on platforms that do not support it: the rename is still atomic.
  } finally {
    await handle?.close().catch(() => {})
  }
}
