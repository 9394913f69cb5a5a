import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  loadProviders,
  providerPackages,
  readRuntimeConfig,
  resolvePackageEntry,
} from './loader.js'

let root: string

function fakeProvider(id: string, spec = 'v1', asDefault = true): string {
  const body = `{ id: ${JSON.stringify(id)}, version: '1.0.0', specificationVersion: ${JSON.stringify(spec)}, capabilities: {}, connect: async () => ({}), describe: () => ({ id: ${JSON.stringify(id)} }) }`
  return asDefault
    ? `export default ${body}\n`
    : `export const helper = () => 1\nexport const provider = ${body}\n`
}

async function addPackage(name: string, source: string, manifest: Record<string, unknown> = {}) {
  const dir = join(root, 'node_modules', name)
  await mkdir(join(dir, 'dist'), { recursive: true })
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({
      name,
      type: 'module',
      exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      ...manifest,
    }),
  )
  await writeFile(join(dir, 'dist', 'index.js'), source)
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nvisy-loader-'))
  await addPackage('fake-provider', fakeProvider('fake'))
  await addPackage('@acme/named-export', fakeProvider('acme', 'v1', false))
  await addPackage('future-provider', fakeProvider('future', 'v2'))
  await addPackage('same-id', fakeProvider('fake'))
  await addPackage('not-a-provider', 'export const x = 1\n')
  await addPackage('broken', 'throw new Error("boom at import")\n')
  await mkdir(join(root, 'project', 'deep'), { recursive: true })
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('loadProviders', () => {
  it('imports packages by name from the directory upward and registers them by id', async () => {
    const registry = await loadProviders(['fake-provider', '@acme/named-export'], {
      from: join(root, 'project', 'deep'),
    })
    expect(registry.list().map((p) => p.id)).toEqual(['fake', 'acme'])
    expect(registry.packageOf('acme')).toBe('@acme/named-export')
  })

  it('names the package when it is missing, exports no provider, fails to import or has another version', async () => {
    const from = root
    await expect(loadProviders(['nope-provider'], { from })).rejects.toThrow(
      /provider package nope-provider is not installed/,
    )
    await expect(loadProviders(['not-a-provider'], { from })).rejects.toThrow(
      /package not-a-provider exports no provider/,
    )
    await expect(loadProviders(['broken'], { from })).rejects.toThrow(
      /provider package broken failed to load: boom at import/,
    )
    await expect(loadProviders(['future-provider'], { from })).rejects.toThrow(
      /provider future from package future-provider implements specification v2; this runtime supports v1/,
    )
  })

  it('refuses two providers with one id', async () => {
    await expect(loadProviders(['fake-provider', 'same-id'], { from: root })).rejects.toThrow(
      /two providers have the id "fake": from package fake-provider and from package same-id/,
    )
  })

  it('loads a real provider package of this workspace', async () => {
    const here = dirname(fileURLToPath(import.meta.url))
    expect(resolvePackageEntry('@nvisy/provider-fs', here)).toMatch(
      /provider-fs[/\\]dist[/\\]index\.js$/,
    )
    const registry = await loadProviders(['@nvisy/provider-fs'], { from: here })
    expect(registry.get('fs')?.capabilities.read).toBe(true)
  })

  it('searches every given directory in order, then where the runtime is installed (global installs)', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'nvisy-loader-empty-'))
    try {
      // Nothing under `empty`: found beside the runtime itself, as a global install is.
      const registry = await loadProviders(['@nvisy/provider-fs'], { from: empty })
      expect(registry.get('fs')).toBeDefined()
      // The second directory is searched when the first has nothing.
      const second = await loadProviders(['fake-provider'], {
        from: [empty, join(root, 'project')],
        searchRuntimeInstall: false,
      })
      expect(second.get('fake')).toBeDefined()
      // Not found anywhere: the error names the places and the command that installs it.
      const missing = loadProviders(['@nvisy/provider-nope'], { from: [empty, root] })
      await expect(missing).rejects.toThrow(/not installed/)
      await expect(missing).rejects.toThrow(/npm install @nvisy\/provider-nope/)
      await expect(missing).rejects.toThrow(/npm install -g @nvisy\/provider-nope/)
      await expect(
        loadProviders(['@nvisy/provider-fs'], { from: empty, searchRuntimeInstall: false }),
      ).rejects.toThrow(/not installed/)
    } finally {
      await rm(empty, { recursive: true, force: true })
    }
  })
})

describe('config', () => {
  it('merges config file, flags and environment without repeats', async () => {
    const file = join(root, 'nvisy.config.json')
    await writeFile(file, JSON.stringify({ providers: ['a', 'b'] }))
    const config = await readRuntimeConfig(file)
    expect(providerPackages({ config, flags: ['b,c', 'd'], env: ' e , a ' })).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
    ])
    await writeFile(file, JSON.stringify({ providers: 'a' }))
    await expect(readRuntimeConfig(file)).rejects.toThrow(/\/providers must be an array/)
    await writeFile(file, '{')
    await expect(readRuntimeConfig(file)).rejects.toThrow(/not valid JSON/)
  })
})
