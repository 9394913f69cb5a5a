import module from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { movesData } from './heap-ceiling.js'

/**
 * Where `nvisy` keeps V8's compiled code of the modules it loads (Node 22.1 and later): the
 * user's own cache folder, never a shared temporary one (compiled code read from a folder that
 * another user can write would run as this one).
 */
export function compileCacheDirectory(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache')
  return join(base, 'nvisy', 'compile-cache')
}

/**
 * Turns on, for `run` and `serve`, Node's module compile cache where Node has it
 * (`module.enableCompileCache`, Node 22.1+; a no-op on Node 20): a start then reads the AWS
 * SDK's and the providers' compiled code instead of parsing and compiling them again. Other
 * commands write nothing to the user's folders for it (`nvisy keys --print-seed` promises to
 * write nothing at all). Node checks each entry against the source and its own version, and
 * `NODE_DISABLE_COMPILE_CACHE=1` turns it off. Never throws: a cache that cannot be used only
 * costs the time it would have saved.
 */
export function enableCompileCache(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): void {
  if (!movesData(args)) return
  const enable = (module as { enableCompileCache?: (directory?: string) => unknown })
    .enableCompileCache
  if (typeof enable !== 'function') return
  try {
    enable(compileCacheDirectory(env))
  } catch {
    // A read-only home, a full disk: run without it.
  }
}
