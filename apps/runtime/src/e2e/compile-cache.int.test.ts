// The built CLI keeps V8's compiled code in the user's cache folder where Node can (22.1+), so a
// second start does not parse the AWS SDK and the providers again; never in a shared temporary
// folder, and not at all with NODE_DISABLE_COMPILE_CACHE=1.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import module from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileCacheDirectory } from '../compile-cache.js'
import { fsCopyFolder, runCli } from './__fixtures__/cli.js'

const nodeHasCache =
  typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-compile-cache-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Every file under `path`, or [] when it does not exist. */
async function filesUnder(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
  } catch {
    return []
  }
}

async function emptyRun(cacheHome: string, env: NodeJS.ProcessEnv = {}) {
  const work = join(dir, `work-${Math.random().toString(16).slice(2)}`)
  await fsCopyFolder(work, 'x')
  return runCli(['run', 'pipeline.json', '--no-resume', '--checkpoints', 'c.json'], {
    cwd: work,
    env: { XDG_CACHE_HOME: cacheHome, ...env },
  })
}

describe('compile cache', () => {
  it('lives in the user cache folder, not in a shared temporary one', () => {
    expect(compileCacheDirectory({ XDG_CACHE_HOME: '/home/u/.cache' })).toBe(
      '/home/u/.cache/nvisy/compile-cache',
    )
    expect(compileCacheDirectory({})).toBe(join(homedir(), '.cache', 'nvisy', 'compile-cache'))
    expect(compileCacheDirectory({ XDG_CACHE_HOME: '  ' })).toBe(
      join(homedir(), '.cache', 'nvisy', 'compile-cache'),
    )
  })

  it.skipIf(!nodeHasCache)(
    'a run (in the heap-ceiling worker) fills it, and the next run still completes from it',
    async () => {
      const cacheHome = join(dir, 'cache-on')
      const first = await emptyRun(cacheHome)
      expect(first.code, first.stderr).toBe(0)
      const cached = await filesUnder(join(cacheHome, 'nvisy', 'compile-cache'))
      expect(cached.length).toBeGreaterThan(0)
      const second = await emptyRun(cacheHome)
      expect(second.code, second.stderr).toBe(0)
      expect(JSON.parse(second.stdout).status).toBe('completed')
    },
  )

  it('is not written with NODE_DISABLE_COMPILE_CACHE=1', async () => {
    const cacheHome = join(dir, 'cache-off')
    const result = await emptyRun(cacheHome, { NODE_DISABLE_COMPILE_CACHE: '1' })
    expect(result.code, result.stderr).toBe(0)
    expect(await filesUnder(join(cacheHome, 'nvisy'))).toEqual([])
  })
})
