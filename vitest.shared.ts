// Shared Vitest settings: tests run from source, so every workspace package name
// resolves to its `src/` entry instead of its built `dist/`.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A Vite alias entry (declared here so this file needs no direct `vite` dependency). */
export interface Alias {
  find: RegExp
  replacement: string
}

export const repoRoot = dirname(fileURLToPath(import.meta.url))
export const workspaceGroups = ['packages', 'apps', 'examples'] as const

export interface WorkspacePackage {
  name: string
  dir: string
  exports: Record<string, string>
}

export function workspacePackages(): WorkspacePackage[] {
  const found: WorkspacePackage[] = []
  for (const group of workspaceGroups) {
    const groupDir = join(repoRoot, group)
    if (!existsSync(groupDir)) continue
    for (const entry of readdirSync(groupDir)) {
      const manifest = join(groupDir, entry, 'package.json')
      if (!existsSync(manifest)) continue
      const pkg = JSON.parse(readFileSync(manifest, 'utf8'))
      const sourceExports: Record<string, string> = {}
      const exportsField = pkg.exports ?? {}
      for (const [subpath, target] of Object.entries<any>(exportsField)) {
        if (!subpath.startsWith('.')) continue
        const built = typeof target === 'string' ? target : (target?.import ?? target?.default)
        if (typeof built !== 'string' || !built.startsWith('./dist/')) continue
        sourceExports[subpath] = built.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts')
      }
      found.push({ name: pkg.name, dir: join(groupDir, entry), exports: sourceExports })
    }
  }
  return found
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** Aliases from every workspace package's public entry points to their sources. */
export function workspaceAliases(): Alias[] {
  const aliases: Alias[] = []
  for (const pkg of workspacePackages()) {
    for (const [subpath, source] of Object.entries(pkg.exports)) {
      const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`
      const file = join(pkg.dir, source)
      if (!existsSync(file)) continue
      aliases.push({ find: new RegExp(`^${escapeRegExp(specifier)}$`), replacement: file })
    }
  }
  return aliases
}
