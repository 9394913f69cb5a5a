// Registration: the runtime loads this provider by its package name, as a deployment's
// config names it. This is a check inside the Nvisy repository (it imports the runtime's
// loader from its source by path); a provider outside the repository does not need it.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Provider, RecordData } from '@nvisy/provider-core'
import { servicesRequired } from '@nvisy/provider-testkit'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const loaderFile = resolve(packageDir, '../../apps/runtime/src/loader.ts')
const builtEntry = join(packageDir, 'dist/index.js')

function skipReason(): string | false {
  let reason: string | false = false
  if (!existsSync(loaderFile)) reason = `the runtime's loader is not at ${loaderFile}`
  else if (!existsSync(builtEntry))
    reason = `the package is not built (${builtEntry}); run: pnpm --filter @acme/nvisy-provider-sqlite build`
  if (reason && servicesRequired()) throw new Error(`NVISY_REQUIRE_SERVICES is set but ${reason}`)
  if (reason) console.warn(`[nvisy] skipping registration test: ${reason}`)
  return reason
}

interface Loader {
  readRuntimeConfig(path: string): Promise<{ providers: string[] }>
  loadProviders(
    packages: readonly string[],
    options: { from: string },
  ): Promise<{ get(id: string): Provider | undefined; packageOf(id: string): string | undefined }>
}

const skip = skipReason()
const dir = mkdtempSync(join(tmpdir(), 'nvisy-sqlite-registration-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(skip !== false)('registration in the runtime', () => {
  it('is loaded by package name from the runtime config and works', async () => {
    // A deployment directory: the config file, and the package installed next to it.
    const scope = join(dir, 'node_modules', '@acme')
    mkdirSync(scope, { recursive: true })
    symlinkSync(packageDir, join(scope, 'nvisy-provider-sqlite'), 'dir')
    const configFile = join(dir, 'nvisy.config.json')
    writeFileSync(configFile, JSON.stringify({ providers: ['@acme/nvisy-provider-sqlite'] }))

    const loader = (await import(pathToFileURL(loaderFile).href)) as Loader
    const config = await loader.readRuntimeConfig(configFile)
    const registry = await loader.loadProviders(config.providers, { from: dir })
    const provider = registry.get('sqlite')
    expect(provider?.id).toBe('sqlite')
    expect(registry.packageOf('sqlite')).toBe('@acme/nvisy-provider-sqlite')
    expect(provider!.describe().capabilities).toMatchObject({ read: true, write: true })

    const path = join(dir, 'data.db')
    const db = new Database(path)
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'one')")
    db.close()
    const connection = await provider!.connect({ credentials: {}, params: { path } })
    try {
      const items: RecordData[] = []
      for await (const item of connection.read(
        { table: 't' },
        { signal: new AbortController().signal },
      )) {
        items.push(item.data as RecordData)
      }
      expect(items).toEqual([{ kind: 'record', values: { id: 1, name: 'one' } }])
    } finally {
      await connection.close()
    }
  })
})
