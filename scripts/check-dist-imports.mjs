#!/usr/bin/env node
// Fails when a package's published files (dist/**/*.js and .d.ts) import a package that its
// package.json does not declare in dependencies, peerDependencies or optionalDependencies.
// Such an import works in this workspace (and in a hoisted npm install, by luck) and breaks
// for a user under pnpm or Yarn PnP: e.g. a .d.ts that says import("@sinclair/typebox")
// in a package that only gets TypeBox through @nvisy/provider-core.
//
//   node scripts/check-dist-imports.mjs [package-dir ...]   (default: the current directory)
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// TypeScript's own scanner finds imports, exports, import("x") types, require() and
// <reference types>, and skips strings and comments that merely mention them.
const ts = createRequire(import.meta.url)('typescript')

function specifiers(text) {
  const info = ts.preProcessFile(text, true, true)
  return [...info.importedFiles, ...info.typeReferenceDirectives].map((ref) => ref.fileName)
}

/** Bare specifiers a package's dist imports without declaring them, as "name (in files)". */
export function undeclaredImports(packageDir) {
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'))
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ])
  const found = new Map()
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path)
        continue
      }
      if (!/\.(c|m)?js$|\.d\.(c|m)?ts$/.test(entry.name)) continue
      for (const spec of specifiers(readFileSync(path, 'utf8'))) {
        if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) continue
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec.split('/')[0]
        if (builtinModules.includes(name) || declared.has(name) || declared.has(`@types/${name}`))
          continue
        if (!found.has(name)) found.set(name, new Set())
        found.get(name).add(relative(packageDir, path))
      }
    }
  }
  const dist = join(packageDir, 'dist')
  if (existsSync(dist)) walk(dist)
  return [...found].map(([name, files]) => `${name} (in ${[...files].slice(0, 3).join(', ')})`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dirs = process.argv.length > 2 ? process.argv.slice(2) : ['.']
  let failed = false
  for (const dir of dirs) {
    const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name
    if (!existsSync(join(dir, 'dist'))) {
      console.error(`${name}: no dist/ (build first)`)
      failed = true
      continue
    }
    const undeclared = undeclaredImports(dir)
    if (undeclared.length) {
      failed = true
      console.error(`${name}: dist imports packages its package.json does not declare:`)
      for (const line of undeclared) console.error(`  ${line}`)
    } else console.log(`${name}: every import in dist is declared`)
  }
  process.exit(failed ? 1 : 0)
}
