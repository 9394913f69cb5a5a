import { constants, existsSync } from 'node:fs'
import { type FileHandle, mkdir, open, realpath } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { dataError } from './fs-errors.js'
import { isWithin } from './fs-paths.js'

/**
 * On Linux, `/proc/self/fd/<n>/<name>` names `<name>` inside the folder open as descriptor n,
 * whatever happens to the folder's path afterwards: an `openat(n, name)` that Node has no API
 * for. Every write goes through such paths, so swapping a folder for a symlink while a write is
 * under way cannot move it out of the root. Elsewhere (macOS, Windows) the folder's real path is
 * used after the same checks, which leaves a window between check and use: documented.
 */
export const RACE_FREE = process.platform === 'linux' && existsSync('/proc/self/fd')

const O_DIRECTORY = constants.O_DIRECTORY ?? 0
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0
/** Most symlinked folders a path may pass through (inside the root) before it is refused. */
const MAX_LINKS = 16

/** A folder under the root, held open. */
export class ConfinedDir {
  readonly #handle: FileHandle
  /** The folder's real path when it was opened (for messages and the non-Linux fallback). */
  readonly realPath: string
  #closed = false

  constructor(handle: FileHandle, realPath: string) {
    this.#handle = handle
    this.realPath = realPath
  }

  /** A path naming `name` in this very folder (see `RACE_FREE`). */
  at(name: string): string {
    return RACE_FREE ? `/proc/self/fd/${this.#handle.fd}/${name}` : join(this.realPath, name)
  }

  /** The folder itself (for readdir). */
  get path(): string {
    return RACE_FREE ? `/proc/self/fd/${this.#handle.fd}` : this.realPath
  }

  /** Make renames and new files in this folder durable (not every platform can). */
  async sync(): Promise<void> {
    try {
      await this.#handle.sync()
    } catch {
      // EINVAL/EPERM where a folder cannot be fsynced: the rename is still atomic.
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#handle.close().catch(() => {})
  }
}

function openDir(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
}

/**
 * Opens folder `segments` under `realRoot` one level at a time, each level without following
 * a symlink (created when `create` and missing). A level that is a symlink is accepted only
 * when it resolves to a folder inside the root, which is then walked from the root the same
 * way; anything else is a `data` error naming `what` and the folder.
 */
export async function openConfinedDir(
  realRoot: string,
  segments: readonly string[],
  what: string,
  create: boolean,
  links = 0,
): Promise<ConfinedDir> {
  let current = new ConfinedDir(await openDir(realRoot), realRoot)
  try {
    for (let depth = 0; depth < segments.length; depth++) {
      const segment = segments[depth]!
      const shown = segments.slice(0, depth + 1).join('/')
      const next = current.at(segment)
      let handle: FileHandle | undefined
      for (let attempt = 0; handle === undefined; attempt++) {
        try {
          handle = await openDir(next)
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code
          if (code === 'ENOENT' && create && attempt < 3) {
            // mkdir does not follow a symlink at its last component (EEXIST).
            await mkdir(next).catch((e: NodeJS.ErrnoException) => {
              if (e.code !== 'EEXIST') throw e
            })
            continue
          }
          if (code === 'ELOOP' || (code === 'ENOTDIR' && (await isSymlink(next)))) {
            const real = await followInside(realRoot, next, what, shown, links)
            const rest = segments.slice(depth + 1)
            await current.close()
            const inside = relative(realRoot, real)
            const walked = inside === '' ? [] : inside.split(sep)
            return openConfinedDir(realRoot, [...walked, ...rest], what, create, links + 1)
          }
          if (code === 'ENOTDIR')
            throw dataError(`${what}: ${JSON.stringify(shown)} is a file, not a folder`)
          if (code === 'ENOENT')
            throw dataError(`${what}: folder ${JSON.stringify(shown)} does not exist`)
          throw error
        }
      }
      const realPath = join(current.realPath, segment)
      await current.close()
      current = new ConfinedDir(handle, realPath)
    }
    return current
  } catch (error) {
    await current.close()
    throw error
  }
}

async function isSymlink(path: string): Promise<boolean> {
  const { lstat } = await import('node:fs/promises')
  return (await lstat(path).catch(() => undefined))?.isSymbolicLink() === true
}

/** The real path of symlink `path` when it leads to a folder inside the root; else a data error. */
async function followInside(
  realRoot: string,
  path: string,
  what: string,
  shown: string,
  links: number,
): Promise<string> {
  if (links >= MAX_LINKS)
    throw dataError(`${what}: folder ${JSON.stringify(shown)}: too many symlinked folders`)
  const target = await realpath(path).catch(() => undefined)
  if (target === undefined) {
    throw dataError(
      `${what}: folder ${JSON.stringify(shown)} is a symlink that leads nowhere (dangling); refusing to create anything through it`,
    )
  }
  if (!isWithin(realRoot, target))
    throw dataError(
      `${what}: folder ${JSON.stringify(shown)} is a symlink that leads outside the root`,
    )
  return target
}

/**
 * Opens file `name` of `dir` for appending, created when missing, never through a symlink:
 * a symlink there (dangling or not) is a `data` error naming `what`.
 */
export async function openForAppend(
  dir: ConfinedDir,
  name: string,
  what: string,
): Promise<FileHandle> {
  try {
    return await open(
      dir.at(name),
      constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | O_NOFOLLOW,
      0o666,
    )
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP' || (O_NOFOLLOW === 0 && (await isSymlink(dir.at(name))))) {
      throw dataError(
        `${what} is a symlink; refusing to write through it (a dangling one would create a file wherever it points)`,
        error,
      )
    }
    throw error
  }
}

/** A path that names an open file itself (Linux), for code that opens by path. */
export function handlePath(handle: FileHandle, fallback: string): string {
  return RACE_FREE ? `/proc/self/fd/${handle.fd}` : fallback
}
