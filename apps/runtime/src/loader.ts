import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type Provider, ProviderError, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { parseJsonText } from './json-text.js'
import { MapProviderRegistry } from './registry.js'

export const CONFIG_FILE_NAME = 'nvisy.config.json'

/** The runtime's config file: which provider packages to load. */
export interface RuntimeConfig {
  providers: string[]
}

function configError(message: string, cause?: unknown): ProviderError {
  return new ProviderError({ kind: 'config', message, cause })
}

/** Read and check `nvisy.config.json`. */
export async function readRuntimeConfig(path: string): Promise<RuntimeConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw configError(`cannot read config file ${path}: ${(error as Error).message}`, error)
  }
  let parsed: unknown
  try {
    parsed = parseJsonText(text, path)
  } catch (error) {
    throw configError(`${(error as Error).message} (the config file is not valid JSON)`)
  }
  const providers = (parsed as { providers?: unknown } | null)?.providers
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw configError(
      `config file ${path}: must be a JSON object like {"providers": ["@nvisy/provider-fs"]}`,
    )
  }
  if (
    providers !== undefined &&
    (!Array.isArray(providers) || providers.some((p) => typeof p !== 'string' || p.length === 0))
  ) {
    throw configError(`config file ${path}: /providers must be an array of package names`)
  }
  return { providers: (providers as string[] | undefined) ?? [] }
}

/** Split a comma list (`NVISY_PROVIDERS`, `--provider a,b`) into package names. */
export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** Provider packages from the config file, flags and environment, in that order, without repeats. */
export function providerPackages(sources: {
  config?: RuntimeConfig
  flags?: string[]
  env?: string
}): string[] {
  const all = [
    ...(sources.config?.providers ?? []),
    ...(sources.flags ?? []).flatMap(splitList),
    ...splitList(sources.env),
  ]
  return [...new Set(all)]
}

function looksLikeProvider(value: unknown): value is Provider {
  if (value === null || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return (
    typeof v.id === 'string' &&
    typeof v.specificationVersion === 'string' &&
    typeof v.connect === 'function' &&
    typeof v.describe === 'function'
  )
}

function exportTarget(exportsField: unknown): string | undefined {
  if (typeof exportsField === 'string') return exportsField
  if (exportsField === null || typeof exportsField !== 'object') return undefined
  const record = exportsField as Record<string, unknown>
  const root = '.' in record ? record['.'] : record
  if (typeof root === 'string') return root
  if (root === null || typeof root !== 'object') return undefined
  for (const condition of ['import', 'node', 'default']) {
    const target = (root as Record<string, unknown>)[condition]
    const found = exportTarget(target)
    if (found) return found
  }
  return undefined
}

/**
 * The entry file of an installed package, found the way Node finds `import 'name'` from a file
 * in `fromDir`: `node_modules/<name>` in that directory or any parent, then the package's
 * `exports["."]` (import condition) or `main`. Done by hand because `require.resolve` ignores
 * import-only exports and `import.meta.resolve(name, parent)` needs a flag on Node 20.
 */
export function resolvePackageEntry(name: string, fromDir: string): string | undefined {
  if (name.startsWith('.') || isAbsolute(name)) {
    const file = resolve(fromDir, name)
    return existsSync(file) ? file : undefined
  }
  let dir = resolve(fromDir)
  while (true) {
    const pkgDir = join(dir, 'node_modules', name)
    const manifest = join(pkgDir, 'package.json')
    if (existsSync(manifest)) return manifestEntry(pkgDir, manifest)
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

function manifestEntry(pkgDir: string, manifest: string): string | undefined {
  // Read synchronously: this runs once per package at start-up.
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; main?: string }
  const target = pkg.exports !== undefined ? exportTarget(pkg.exports) : (pkg.main ?? 'index.js')
  return target === undefined ? undefined : join(pkgDir, target)
}

/** Pick the provider a module exports: its default export, else the first export that looks like one. */
export function providerFromModule(module: Record<string, unknown>): Provider | undefined {
  if (looksLikeProvider(module.default)) return module.default
  for (const value of Object.values(module)) if (looksLikeProvider(value)) return value
  return undefined
}

export interface LoadOptions {
  /**
   * Resolve package names from these directories upward, in order (the config file's or
   * pipeline's directory, then the working directory).
   */
  from: string | readonly string[]
  /**
   * Also look where this runtime is installed, so a global install (`npm install -g
   * @nvisy/runtime @nvisy/provider-fs`) finds the providers installed beside it. Default true.
   */
  searchRuntimeInstall?: boolean
  /** Providers given as code (tests, embedding applications). */
  providers?: Provider[]
}

/** Where this runtime package is installed (the folder holding its package.json). */
export function runtimeInstallDirectory(): string {
  // dist/loader.js or src/loader.ts: the package root is one level up.
  return dirname(dirname(fileURLToPath(import.meta.url)))
}

function searchDirectories(options: LoadOptions): string[] {
  const dirs = (typeof options.from === 'string' ? [options.from] : [...options.from]).map((d) =>
    resolve(d),
  )
  if (options.searchRuntimeInstall !== false) dirs.push(runtimeInstallDirectory())
  return [...new Set(dirs)]
}

/**
 * Import each named provider package and register its provider by id. A package that is not
 * installed, exports no provider, implements another specification version, or reuses an id
 * is a start-up error that names the package.
 */
export async function loadProviders(
  packages: readonly string[],
  options: LoadOptions,
): Promise<MapProviderRegistry> {
  const registry = new MapProviderRegistry(options.providers ?? [])
  const dirs = searchDirectories(options)
  for (const name of packages) {
    let entry: string | undefined
    for (const dir of dirs) {
      entry = resolvePackageEntry(name, dir)
      if (entry) break
    }
    if (!entry) {
      const local = name.startsWith('.') || isAbsolute(name)
      throw configError(
        local
          ? `provider module ${name} does not exist (resolved from ${dirs[0]})`
          : `provider package ${name} is not installed: no node_modules/${name} from ${dirs.join(', ')} upward. Install it beside your pipeline (\`npm install ${name}\`, then run \`npx nvisy ...\` there) or beside a global runtime (\`npm install -g ${name}\`)`,
      )
    }
    let module: Record<string, unknown>
    try {
      module = (await import(pathToFileURL(entry).href)) as Record<string, unknown>
    } catch (error) {
      throw configError(
        `provider package ${name} failed to load: ${(error as Error).message}`,
        error,
      )
    }
    const provider = providerFromModule(module)
    if (!provider) {
      throw configError(
        `package ${name} exports no provider (expected a default export or an export with id, specificationVersion, connect and describe)`,
      )
    }
    if (provider.specificationVersion !== SPECIFICATION_VERSION) {
      throw configError(
        `provider ${provider.id} from package ${name} implements specification ${String(provider.specificationVersion)}; this runtime supports ${SPECIFICATION_VERSION}`,
      )
    }
    registry.add(provider, name)
  }
  return registry
}
