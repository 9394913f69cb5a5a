#!/usr/bin/env node
// Checks that every provider package has the shape docs/adding-a-provider.md ("Package shape")
// describes (issue 20): the files in src/, their names, the one conformance test and the
// names index.ts exports. Prints one line per departure, `provider-x: <rule broken>`, and
// exits 1 if there is any; exits 0 with a one-line summary otherwise.
//
// Checked: packages/provider-* (except provider-core and provider-testkit, which are not
// providers) and examples/provider-example. The <id> of a package is its directory's suffix
// (packages/provider-s3 -> s3); the example, a template meant to be copied under any
// directory name, takes it from its package name (@acme/nvisy-provider-sqlite -> sqlite).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const NOT_PROVIDERS = new Set(['provider-core', 'provider-testkit'])

function packageDirs() {
  const dirs = readdirSync(join(root, 'packages'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith('provider-') && !NOT_PROVIDERS.has(e.name))
    .map((e) => join(root, 'packages', e.name))
    .sort()
  const example = join(root, 'examples', 'provider-example')
  if (existsSync(example)) dirs.push(example)
  return dirs
}

function idOf(dir) {
  if (basename(dirname(dir)) === 'packages') return basename(dir).slice('provider-'.length)
  const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name ?? ''
  const match = /provider-([a-z0-9-]+)$/.exec(name)
  return match ? match[1] : basename(dir).slice('provider-'.length)
}

/** Source text without comments (string contents are left alone; good enough for these checks). */
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

/** Every name a module exports, following `export * from` into sibling modules. */
function exportedNames(file, seen = new Set()) {
  const names = new Set()
  if (seen.has(file) || !existsSync(file)) return names
  seen.add(file)
  const text = code(readFileSync(file, 'utf8'))
  for (const [, list] of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const raw of list.split(',')) {
      const spec = raw.trim().replace(/^type\s+/, '')
      if (spec === '') continue
      const alias = /\bas\s+(\w+)$/.exec(spec)
      names.add(alias ? alias[1] : spec)
    }
  }
  const declaration =
    /export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:const|let|var|async\s+function\*?|function\*?|class|type|interface|enum)\s+(\w+)/g
  for (const [, name] of text.matchAll(declaration)) names.add(name)
  for (const [, name] of text.matchAll(/export\s+\*\s+as\s+(\w+)\s+from/g)) names.add(name)
  for (const [, from] of text.matchAll(/export\s+\*\s+from\s+['"](\.[^'"]+)['"]/g)) {
    const target = join(dirname(file), from.replace(/\.js$/, '.ts'))
    for (const name of exportedNames(target, seen)) names.add(name)
  }
  return names
}

function check(dir) {
  const id = idOf(dir)
  const src = join(dir, 'src')
  const files = existsSync(src) ? readdirSync(src) : []
  const has = (name) => files.includes(name)
  const problems = []

  const providerFile = `${id}-provider.ts`
  const provider = has(providerFile) ? code(readFileSync(join(src, providerFile), 'utf8')) : ''
  if (!has(providerFile)) problems.push(`missing src/${providerFile} (the provider declaration)`)

  const connectionFile = `${id}-connection.ts`
  if (!has(connectionFile)) {
    problems.push(`missing src/${connectionFile} (export class <X>Connection owning the client)`)
  } else {
    const connection = code(readFileSync(join(src, connectionFile), 'utf8'))
    if (!/export\s+class\s+\w+Connection\b/.test(connection))
      problems.push(`src/${connectionFile} has no \`export class <X>Connection\``)
  }

  // A source or sink is declared by a `source:` / `sink:` property of defineProvider({...}).
  // Without the provider file, a source/sink is assumed (every provider has at least one).
  const declaresSource = provider === '' || /^\s*source\s*:/m.test(provider)
  const declaresSink = provider === '' || /^\s*sink\s*:/m.test(provider)
  if (declaresSource && !has(`${id}-source.ts`))
    problems.push(`missing src/${id}-source.ts (the provider declares a source)`)
  if (declaresSink && !has(`${id}-sink.ts`))
    problems.push(`missing src/${id}-sink.ts (the provider declares a sink)`)
  for (const [file, what] of [
    [`${id}-schemas.ts`, 'the TypeBox schemas'],
    [`${id}-errors.ts`, `classify<X>Error`],
  ])
    if (!has(file)) problems.push(`missing src/${file} (${what})`)

  // Conformance: a test file named *conformance*, or any test file that runs the kit.
  const conformance = files.filter((name) => {
    if (!/\.test\.ts$/.test(name)) return false
    if (/conformance/.test(name)) return true
    return /\brunProviderConformance\s*\(/.test(code(readFileSync(join(src, name), 'utf8')))
  })
  const allowed = [`${id}-conformance.int.test.ts`, `${id}-conformance.test.ts`]
  if (conformance.length === 0) {
    problems.push(
      `no conformance test: expected src/${allowed[0]} (or src/${allowed[1]} if it needs no service)`,
    )
  } else if (conformance.length > 1) {
    problems.push(
      `more than one conformance test file (${conformance.map((f) => `src/${f}`).join(', ')}): expected exactly one, src/${allowed[0]} (or src/${allowed[1]} if it needs no service)`,
    )
  } else if (!allowed.includes(conformance[0])) {
    problems.push(
      `conformance test src/${conformance[0]} should be named src/${allowed[0]} (or src/${allowed[1]} if it needs no service)`,
    )
  }

  if (!has('index.ts')) {
    problems.push('missing src/index.ts')
  } else {
    const names = [...exportedNames(join(src, 'index.ts'))]
    const factory = names.map((n) => /^create([A-Z]\w*)Provider$/.exec(n)).find(Boolean)
    const prefix = factory?.[1]
    if (!factory) problems.push('src/index.ts does not export create<X>Provider')
    const instance = names.find(
      (n) =>
        /^[a-z]\w*Provider$/.test(n) &&
        (!prefix || n.toLowerCase() === `${prefix}provider`.toLowerCase()),
    )
    if (!instance)
      problems.push(
        `src/index.ts does not export ${prefix ? `${prefix[0].toLowerCase()}${prefix.slice(1)}Provider` : '<x>Provider'} (the provider with default options)`,
      )
    const streamSchema = names.find(
      (n) => /^[A-Z]\w*StreamSchema$/.test(n) && (!prefix || n.startsWith(prefix)),
    )
    if (!streamSchema)
      problems.push(
        `src/index.ts does not export ${prefix ?? '<X>'}...StreamSchema (the stream settings schema)`,
      )
  }
  return problems
}

const dirs = packageDirs()
let departures = 0
let departing = 0
for (const dir of dirs) {
  const problems = check(dir)
  if (problems.length > 0) departing++
  for (const problem of problems) {
    departures++
    console.log(`${basename(dir)}: ${problem}`)
  }
}
if (departures > 0) {
  console.error(
    `check-provider-shape: ${departures} departure(s) in ${departing} of ${dirs.length} provider packages (see docs/adding-a-provider.md, "Package shape")`,
  )
  process.exit(1)
}
console.log(
  `check-provider-shape: all ${dirs.length} provider packages follow the package shape (${dirs.map((d) => relative(root, d)).join(', ')})`,
)
