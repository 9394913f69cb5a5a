import { realpath } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { localPathParams, type Provider, type ValidationIssue } from '@nvisy/provider-core'

/** The environment variable that lists the folders a serving runtime lets requests use. */
export const FS_ROOTS_ENV = 'NVISY_FS_ROOTS'

/**
 * The allowlist of `nvisy serve`: every `--fs-root` flag, then `NVISY_FS_ROOTS` (split on the
 * platform's path-list delimiter, ':' on POSIX), each made absolute against `cwd`. Empty when
 * neither is given: then no request may name a local path at all.
 */
export function fsRootsFrom(
  flags: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): string[] {
  const delimiter = process.platform === 'win32' ? ';' : ':'
  const fromEnv = (env[FS_ROOTS_ENV] ?? '').split(delimiter)
  return [...(flags ?? []), ...fromEnv]
    .map((root) => root.trim())
    .filter((root) => root !== '')
    .map((root) => resolve(cwd, root))
}

function within(root: string, path: string): boolean {
  if (path === root) return true
  const rel = relative(root, path)
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)
}

/**
 * `path` with every symlink and `..` resolved. A path that does not exist (yet) is resolved
 * through its nearest existing ancestor, so a missing folder under a symlink is still placed
 * where the symlink leads.
 */
async function realPathOf(path: string): Promise<string> {
  let current = resolve(path)
  const rest: string[] = []
  for (;;) {
    try {
      const real = await realpath(current)
      return rest.length === 0 ? real : join(real, ...rest.reverse())
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error
      const parent = dirname(current)
      if (parent === current) return resolve(path)
      rest.push(basename(current))
      current = parent
    }
  }
}

/**
 * Confines the local paths of requests (params a provider marks `LocalPath()`, such as the fs
 * provider's root) to an allowlist of folders. Both sides are compared after resolving
 * symlinks and `..`, so neither can lead out of an allowed folder. With no folder allowed,
 * every local path is refused.
 */
export class LocalPathPolicy {
  readonly roots: readonly string[]
  #real: Promise<string[]> | undefined

  constructor(roots: readonly string[] = []) {
    this.roots = roots.map((root) => resolve(root))
  }

  #realRoots(): Promise<string[]> {
    this.#real ??= Promise.all(this.roots.map((root) => realPathOf(root)))
    return this.#real
  }

  /** One issue per local path param of `params` outside the allowlist, at `at` + its pointer. */
  async issues(provider: Provider, params: unknown, at: string): Promise<ValidationIssue[]> {
    const marked = localPathParams(provider.definition.params, params)
    if (marked.size === 0) return []
    const roots = await this.#realRoots()
    const issues: ValidationIssue[] = []
    for (const [pointer, value] of marked) {
      const path = `${at}${pointer === '/' ? '' : pointer}`
      if (roots.length === 0) {
        issues.push({
          path,
          rule: 'fs-root',
          message:
            'is a local path, and this runtime allows none (start it with --fs-root <dir> or NVISY_FS_ROOTS)',
        })
        continue
      }
      if (typeof value !== 'string' || value === '' || value.includes('\0')) continue
      let real: string
      try {
        real = await realPathOf(value)
      } catch (error) {
        // A name too long, a symlink loop, a folder we may not search: not a path we allow.
        issues.push({
          path,
          rule: 'fs-root',
          message: `cannot be resolved (${(error as NodeJS.ErrnoException).code ?? 'error'}), so it cannot be checked against the allowed folders`,
        })
        continue
      }
      if (!roots.some((root) => within(root, real))) {
        issues.push({
          path,
          rule: 'fs-root',
          message: `is outside the folders this runtime allows (--fs-root / ${FS_ROOTS_ENV})`,
        })
      }
    }
    return issues
  }
}
