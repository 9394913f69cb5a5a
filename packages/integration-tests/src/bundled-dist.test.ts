// The published JavaScript as users load it: one ES module per entry point (scripts/bundle-dist.mjs
// over tsc's output), so a `nvisy run` loads a handful of our files and none of the libraries
// provider-core carries inside its bundle. Start-up time is measured in bench/; these tests
// guard what it depends on, and the bundler's refusal of an undeclared package.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fsCopyFolder } from '../../../apps/runtime/src/e2e/__fixtures__/cli.js'
import { repoRoot } from '../../../vitest.shared.js'
import { CLI } from './support/cli.js'

const run = promisify(execFile)
const BUNDLER = join(repoRoot, 'scripts/bundle-dist.mjs')

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-bundled-dist-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The module files a process opened, from a module-loading hook preloaded with --import. */
async function loadedFiles(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const hook = join(dir, 'record-loads.mjs')
  const log = join(dir, `loads-${Date.now()}.txt`)
  // A resolve hook sees every ES module the process loads (a CommonJS package's first file
  // too, when ESM imports it, as provider-core did ajv).
  await writeFile(
    hook,
    `import { register } from 'node:module'
register('data:text/javascript,' + encodeURIComponent(\`
  import { appendFileSync } from 'node:fs'
  export async function resolve(specifier, context, next) {
    const result = await next(specifier, context)
    if (result.url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, result.url + '\\\\n')
    return result
  }\`))
`,
  )
  await run(process.execPath, ['--import', hook, ...args], { cwd, env })
  const text = await readFile(log, 'utf8')
  return [...new Set(text.split('\n').filter(Boolean))]
}

describe('the built runtime', () => {
  it('runs a pipeline loading a handful of its own files and none of TypeBox, ajv or lossless-json', async () => {
    const work = join(dir, 'fs-run')
    // The runtime finds @nvisy/provider-fs beside itself (its install folder), as a global
    // install would.
    await fsCopyFolder(work, 'bundled\n')
    // Without the heap-ceiling worker: a hook registered with --import does not reach a
    // worker thread's loader, and the worker loads the same modules.
    const files = await loadedFiles(
      [CLI, 'run', 'pipeline.json', '--no-resume', '--checkpoints', 'c.json'],
      work,
      { ...process.env, NVISY_MAX_HEAP_MB: '0' },
    )
    // The copy happened.
    expect(await readFile(join(work, 'out/copied/files/a.txt'), 'utf8')).toBe('bundled\n')

    const ours = (pkg: string) => files.filter((f) => f.includes(`/${pkg}/dist/`))
    expect(ours('apps/runtime').length).toBeGreaterThan(0)
    expect(ours('apps/runtime').length).toBeLessThanOrEqual(8)
    expect(ours('provider-core')).toEqual([
      expect.stringMatching(/provider-core\/dist\/index\.js$/),
    ])
    expect(ours('provider-fs')).toEqual([expect.stringMatching(/provider-fs\/dist\/index\.js$/)])
    const fromNodeModules = files.filter((f) =>
      /node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?(@sinclair\/typebox|ajv|ajv-formats|lossless-json)\//.test(
        f,
      ),
    )
    expect(fromNodeModules).toEqual([])
  })
})

describe('scripts/bundle-dist.mjs', () => {
  /** A package folder with dist/index.js importing `lib`, installed in its node_modules. */
  async function fixture(name: string, manifest: Record<string, unknown>, licensed = true) {
    const pkg = join(dir, name)
    await mkdir(join(pkg, 'dist'), { recursive: true })
    await mkdir(join(pkg, 'node_modules/lib'), { recursive: true })
    await writeFile(
      join(pkg, 'node_modules/lib/package.json'),
      JSON.stringify({ name: 'lib', version: '1.0.0', type: 'module', exports: './index.js' }),
    )
    await writeFile(join(pkg, 'node_modules/lib/index.js'), 'export const fromLib = "lib-value"\n')
    if (licensed)
      await writeFile(
        join(pkg, 'node_modules/lib/LICENSE'),
        'MIT License\n\nCopyright (c) lib authors\n',
      )
    await writeFile(join(pkg, 'dist/helper.js'), 'export const helper = (x) => "helped " + x\n')
    await writeFile(
      join(pkg, 'dist/index.js'),
      "import { fromLib } from 'lib'\nimport { helper } from './helper.js'\nexport const value = helper(fromLib)\n",
    )
    await writeFile(
      join(pkg, 'package.json'),
      JSON.stringify({
        name,
        version: '1.0.0',
        type: 'module',
        exports: './dist/index.js',
        ...manifest,
      }),
    )
    return pkg
  }

  const bundle = (cwd: string, args: string[] = []) =>
    run(process.execPath, [BUNDLER, ...args], { cwd }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        stdout: e.stdout,
        stderr: e.stderr,
      }),
    )

  it('refuses to copy in a package the manifest does not declare', async () => {
    const pkg = await fixture('undeclared', {})
    const result = await bundle(pkg)
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('bundled undeclared packages lib')
    // dist is left as tsc wrote it.
    expect(await readFile(join(pkg, 'dist/helper.js'), 'utf8')).toContain('helped')
  })

  it('keeps a declared package an import and joins its own files into one module', async () => {
    const pkg = await fixture('declared', { dependencies: { lib: '^1.0.0' } })
    const result = await bundle(pkg)
    expect(result.code).toBe(0)
    const out = await readFile(join(pkg, 'dist/index.js'), 'utf8')
    expect(out).toMatch(/from "lib"/)
    expect(out).not.toContain('lib-value')
    await expect(readFile(join(pkg, 'dist/helper.js'), 'utf8')).rejects.toThrow(/ENOENT/)
    const loaded = await import(`${join(pkg, 'dist/index.js')}?v=declared`)
    expect(loaded.value).toBe('helped lib-value')
  })

  it('copies an --inline package into the bundle', async () => {
    const pkg = await fixture('inlined', { dependencies: { lib: '^1.0.0' } })
    const result = await bundle(pkg, ['--inline', 'lib'])
    expect(result.code).toBe(0)
    const out = await readFile(join(pkg, 'dist/index.js'), 'utf8')
    expect(out).not.toMatch(/from "lib"/)
    // Its licence ships with the copy.
    const licenses = await readFile(join(pkg, 'dist/THIRD_PARTY_LICENSES.txt'), 'utf8')
    expect(licenses).toContain('lib@1.0.0')
    expect(licenses).toContain('Copyright (c) lib authors')
    await rm(join(pkg, 'node_modules'), { recursive: true })
    const loaded = await import(`${join(pkg, 'dist/index.js')}?v=inlined`)
    expect(loaded.value).toBe('helped lib-value')
  })

  it('refuses to copy in a package that has no licence file to ship with it', async () => {
    const pkg = await fixture('unlicensed', { dependencies: { lib: '^1.0.0' } }, false)
    const result = await bundle(pkg, ['--inline', 'lib'])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('lib is bundled but has no licence file')
    expect(await readFile(join(pkg, 'dist/helper.js'), 'utf8')).toContain('helped')
  })
})
