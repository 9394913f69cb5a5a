#!/usr/bin/env node
// Turns a package's compiled dist/ (tsc's one .js per source file) into one ES module per entry
// point, with the code the entries share in chunks beside them, so that Node loads a handful of
// files instead of dozens. Node 20's ES module loader spends about half a millisecond on each
// file it resolves, reads and links: a `nvisy run` loaded about 550 files before its first
// byte, and TypeBox alone (about 200 files) cost 150 ms of it. The declarations (.d.ts) tsc
// wrote are kept as they are; the bundles' source maps lead back to src/*.ts through tsc's maps.
//
//   node ../../scripts/bundle-dist.mjs [--entry dist/other.js]... [--inline name[,name]...]
//
// Run from the package's folder after tsc. The entry points are the package's exports and
// bins that point into dist/, and each --entry (a file loaded by path, e.g. a worker's script).
// Every package the manifest declares (dependencies, peer and optional dependencies) stays an
// import, so that one copy of it is shared with the rest of the installation (identity of
// classes such as ProviderError across packages depends on that), except those named by
// --inline: small pure libraries copied into the bundle (with their own dependencies), which
// are then not loaded from node_modules at run time.
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const { values } = parseArgs({
  options: {
    entry: { type: 'string', multiple: true, default: [] },
    inline: { type: 'string', multiple: true, default: [] },
  },
})
const packageDir = process.cwd()
const dist = join(packageDir, 'dist')
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'))

/** Every target string of an exports / bin value (conditions included), under dist/ and .js. */
function targets(value) {
  if (typeof value === 'string') return [value]
  if (value === null || typeof value !== 'object') return []
  return Object.values(value).flatMap(targets)
}
const declared = [
  ...targets(manifest.exports ?? manifest.main ?? []),
  ...targets(typeof manifest.bin === 'string' ? { bin: manifest.bin } : (manifest.bin ?? {})),
]
const entries = [...new Set([...declared, ...values.entry])]
  .map((path) => resolve(packageDir, path))
  .filter((path) => path.startsWith(`${dist}/`) && path.endsWith('.js'))
if (entries.length === 0) throw new Error(`${manifest.name}: no .js entry point under dist/`)

const inline = new Set(values.inline.flatMap((names) => names.split(',')).filter(Boolean))
const dependencies = new Set([
  ...Object.keys(manifest.dependencies ?? {}),
  ...Object.keys(manifest.peerDependencies ?? {}),
  ...Object.keys(manifest.optionalDependencies ?? {}),
])
for (const name of inline) {
  if (!dependencies.has(name) && !Object.hasOwn(manifest.devDependencies ?? {}, name))
    throw new Error(`${manifest.name}: --inline ${name} is not among its declared packages`)
}
// A package marked external is also external with a subpath (ajv/dist/2020.js).
const external = [...dependencies].filter((name) => !inline.has(name))

// Written beside dist/ first (same depth, so the source maps' relative paths hold), then moved.
const out = join(packageDir, '.dist-bundle')
rmSync(out, { recursive: true, force: true })
try {
  const result = await build({
    entryPoints: entries,
    outbase: dist,
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external,
    // Chunks sit beside the entries, at dist/'s top level as tsc's files did: code that finds
    // its package from import.meta.url (the runtime's loader) sees the same depth.
    chunkNames: '[name]-[hash]',
    sourcemap: 'linked',
    // Not minified. No keepNames either: it wraps every named function in a call that sets its
    // name when it is created, which cost the per-row paths 10-15% of their CPU (a closure made
    // per row pays it each time). A top-level name that collides with another module's is
    // renamed in the bundle (Foo2); nothing of ours reads a function's or class's name.
    legalComments: 'eof',
    logLevel: 'warning',
    metafile: true,
  })
  // A bare import that is neither declared nor inlined would have been bundled silently: an
  // undeclared dependency reached through the workspace. Refuse it, as check-dist-imports does.
  const bundled = new Map() // name -> the package's folder
  for (const path of Object.keys(result.metafile.inputs)) {
    const match =
      /^(.*node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+))\//.exec(path)
    if (match) bundled.set(match[2], resolve(packageDir, match[1]))
  }
  const undeclared = [...bundled.keys()].filter(
    (name) =>
      !inline.has(name) &&
      // The inlined packages' own dependencies come with them.
      !isDependencyOfInlined(name),
  )
  if (undeclared.length > 0)
    throw new Error(`${manifest.name}: bundled undeclared packages ${undeclared.join(', ')}`)

  // The licences of the packages copied in go with the copy (MIT and the like ask for it).
  const licenseText = bundled.size > 0 ? licenses(bundled) : undefined

  // Replace tsc's JavaScript (and its maps) with the bundles; the declarations stay.
  const removeJs = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) removeJs(path)
      else if (/\.js(\.map)?$/.test(entry.name)) rmSync(path)
    }
  }
  removeJs(dist)
  cpSync(out, dist, { recursive: true })
  if (licenseText !== undefined) writeFileSync(join(dist, 'THIRD_PARTY_LICENSES.txt'), licenseText)
  const files = Object.keys(result.metafile.outputs).filter((p) => p.endsWith('.js'))
  process.stdout.write(
    `${manifest.name}: ${entries.map((e) => relative(packageDir, e)).join(', ')} -> ${files.length} files${inline.size > 0 ? ` (inlined: ${[...inline].join(', ')})` : ''}\n`,
  )
} finally {
  rmSync(out, { recursive: true, force: true })
}

/** True when `name` is installed as a dependency (at any depth) of an inlined package. */
function isDependencyOfInlined(name) {
  const seen = new Set()
  const visit = (pkg, from) => {
    if (seen.has(pkg)) return false
    seen.add(pkg)
    let pkgManifest
    let pkgDir
    try {
      pkgDir = findPackageDir(pkg, from)
      pkgManifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
    } catch {
      return false
    }
    const deps = Object.keys({ ...pkgManifest.dependencies, ...pkgManifest.peerDependencies })
    if (deps.includes(name)) return true
    return deps.some((dep) => visit(dep, pkgDir))
  }
  return [...inline].some((pkg) => visit(pkg, packageDir))
}

/** The folder of package `name` as Node would find it from `from` (node_modules upwards). */
function findPackageDir(name, from) {
  let dir = from
  for (;;) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate)
    const parent = resolve(dir, '..')
    if (parent === dir) throw new Error(`${name} not found from ${from}`)
    dir = parent
  }
}

/** Each bundled package's name, version, licence and licence text, one after another. */
function licenses(packages) {
  const parts = []
  for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const file = readdirSync(dir).find((f) => /^licen[cs]e(\.|$)/i.test(f))
    if (file === undefined)
      throw new Error(
        `${manifest.name}: ${name} is bundled but has no licence file to ship with it`,
      )
    parts.push(
      `${name}@${pkg.version} (${pkg.license ?? 'see below'})\n\n${readFileSync(join(dir, file), 'utf8').trim()}\n`,
    )
  }
  return `Packages bundled into this package's dist/ and their licences.\n\n${parts.join('\n---\n\n')}`
}
