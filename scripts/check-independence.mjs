#!/usr/bin/env node
// Proves that every published provider package installs and works on its own, the way a
// user gets it from the registry: for each provider, `pnpm pack` it and @nvisy/provider-core,
// install the two tarballs with npm into an empty ESM project (third-party dependencies
// from the npm registry), then in a plain `node` process import the provider by package
// name, call describe(), and connect() + check() against its test server when one answers.
// It also asserts that the install holds no other provider's SDK, exactly one copy of
// @nvisy/provider-core, no other @nvisy package, and that a TypeScript consumer
// typechecks against the published .d.ts (no undeclared type dependency).
//
//   node scripts/check-independence.mjs [--only s3,postgres] [--concurrency 3] [--keep]
//
// Assumes `pnpm build` ran. Exits non-zero when any package fails. Environment:
//   NVISY_INDEPENDENCE_CONCURRENCY  packages at a time (default 3)
//   NVISY_NPM_CACHE                 npm cache shared by the installs (default ~/.cache/nvisy/npm)
//   NVISY_REQUIRE_SERVICES=1        a test server that does not answer fails the package
//                                   (S3 and GCS excepted: the test run starts those later)
//   NVISY_TEST_*                    the same test-server settings the test suites read
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createConnection } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { undeclaredImports } from './check-dist-imports.mjs'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')

// The SDK packages of each provider: none of them may appear in another provider's install.
// Keep in step with each provider's `dependencies` (the script fails on a dependency that is
// neither listed here nor in SHARED, so a new SDK cannot slip past unnoticed).
const SDKS = {
  elasticsearch: ['@elastic/elasticsearch', '@elastic/transport'],
  fs: [],
  gcs: ['@google-cloud/storage'],
  mongodb: ['mongodb', 'bson'],
  mysql: ['mysql2'],
  nats: ['@nats-io/nats-core', '@nats-io/jetstream', '@nats-io/transport-node', '@nats-io/kv'],
  neo4j: ['neo4j-driver', 'neo4j-driver-core', 'neo4j-driver-bolt-connection'],
  opensearch: ['@opensearch-project/opensearch'],
  pinecone: ['@pinecone-database/pinecone'],
  postgres: [
    'pg',
    'pg-copy-streams',
    'pg-cursor',
    'pg-protocol',
    'pg-pool',
    'postgres-array',
    '@types/pg',
    '@types/pg-copy-streams',
    '@types/pg-cursor',
  ],
  redis: ['ioredis'],
  s3: ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'],
}
// Dependencies that providers may share: not an SDK of anyone.
const SHARED = new Set(['@nvisy/provider-core', '@sinclair/typebox', 'picomatch', 'mime-types'])

// ---------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2)
const flag = (name) => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : (argv[i + 1] ?? '')
}
const only = flag('only')
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const concurrency = Number(flag('concurrency') ?? process.env.NVISY_INDEPENDENCE_CONCURRENCY ?? 3)
const keep = argv.includes('--keep')
const requireServices = process.env.NVISY_REQUIRE_SERVICES === '1'
const npmCache =
  process.env.NVISY_NPM_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvisy', 'npm')
const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')

// ---------------------------------------------------------------------------------------
// Helpers

function run(cmd, args, { cwd, env, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const collect = (d) => {
      out += d
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const timer = setTimeout(() => {
      out += `\n[timed out after ${timeoutMs / 1000}s]`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: -1, out: `${out}\n${error.message}` })
    })
  })
}

function tcpUp(host, port, timeoutMs = 1500) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

async function httpUp(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await response.arrayBuffer()
    return true
  } catch {
    return false
  }
}

function hostPortOf(url, defaultPort) {
  const parsed = new URL(url)
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || defaultPort),
  }
}

const suffix = () => randomBytes(4).toString('hex')
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`
const lastLines = (text, n = 15) => text.trim().split('\n').slice(-n).join('\n')

/** Top-level package names in node_modules (scoped names included). */
function topLevel(nodeModules) {
  if (!existsSync(nodeModules)) return []
  const names = []
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue
    if (entry.startsWith('@')) {
      for (const inner of readdirSync(join(nodeModules, entry))) names.push(`${entry}/${inner}`)
    } else names.push(entry)
  }
  return names
}

/** Every installed package name, at any depth. */
function allInstalled(nodeModules, into = new Set()) {
  for (const name of topLevel(nodeModules)) {
    into.add(name)
    const nested = join(nodeModules, name, 'node_modules')
    if (existsSync(nested)) allInstalled(nested, into)
  }
  return into
}

/** Every path at which `name` is installed. */
function copiesOf(nodeModules, name, found = []) {
  for (const entry of topLevel(nodeModules)) {
    if (entry === name) found.push(join(nodeModules, entry))
    const nested = join(nodeModules, entry, 'node_modules')
    if (existsSync(nested)) copiesOf(nested, name, found)
  }
  return found
}

// ---------------------------------------------------------------------------------------
// Test targets: how each provider connects to its test server here, or why it cannot.

let emulators // the workspace's @nvisy/emulators (dist), loaded on first use
async function loadEmulators() {
  if (emulators !== undefined) return emulators
  const entry = join(repoRoot, 'packages', 'emulators', 'dist', 'index.js')
  emulators = existsSync(entry) ? await import(pathToFileURL(entry).href).catch(() => null) : null
  return emulators
}

/**
 * Returns { input, setup?, teardown?, close? } to connect with, or { skip: reason }.
 * `setup`/`teardown` name a step the child runs with the installed SDK (bucket creation).
 */
async function targetFor(id, workDir) {
  const env = process.env
  switch (id) {
    case 'fs': {
      const root = join(workDir, 'fs-root')
      mkdirSync(root, { recursive: true })
      writeFileSync(join(root, 'hello.txt'), 'hello\n')
      return { input: { credentials: {}, params: { root } } }
    }
    case 'postgres': {
      const url = env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
      const { host, port } = hostPortOf(url, 5432)
      if (!(await tcpUp(host, port))) return { skip: `PostgreSQL not reachable at ${host}:${port}` }
      return { input: { credentials: { url }, params: {} } }
    }
    case 'mysql': {
      const url = env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
      const { host, port } = hostPortOf(url, 3306)
      if (!(await tcpUp(host, port))) return { skip: `MySQL not reachable at ${host}:${port}` }
      return { input: { credentials: { url }, params: {} } }
    }
    case 'redis': {
      const url = new URL(env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0')
      const { host, port } = hostPortOf(url.href, 6379)
      if (!(await tcpUp(host, port))) return { skip: `Redis not reachable at ${host}:${port}` }
      const credentials = {}
      if (url.username) credentials.username = decodeURIComponent(url.username)
      if (url.password) credentials.password = decodeURIComponent(url.password)
      const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
      return { input: { credentials, params: { host, port, db } } }
    }
    case 'nats': {
      const url = env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
      const { host, port } = hostPortOf(url, 4222)
      if (!(await tcpUp(host, port))) return { skip: `NATS not reachable at ${host}:${port}` }
      return { input: { credentials: {}, params: { servers: url } } }
    }
    case 's3': {
      const endpoint = env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
      if (!(await httpUp(endpoint)))
        return { skip: `S3 server not answering at ${endpoint}`, optional: true }
      const bucket = `nvisy-indep-${suffix()}`
      return {
        input: {
          credentials: {
            accessKeyId: env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001',
            secretAccessKey:
              env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001',
          },
          params: { bucket, region: env.NVISY_TEST_S3_REGION ?? 'us-east-1', endpoint },
        },
        setup: 's3-bucket',
      }
    }
    case 'gcs': {
      const apiEndpoint = env.NVISY_TEST_GCS_ENDPOINT ?? 'http://127.0.0.1:9199'
      if (!(await httpUp(apiEndpoint)))
        return { skip: `GCS emulator not answering at ${apiEndpoint}`, optional: true }
      const bucket = `nvisy-indep-${suffix()}`
      const projectId = env.NVISY_TEST_GCS_PROJECT ?? 'demo-nvisy'
      return {
        input: { credentials: {}, params: { bucket, projectId, apiEndpoint } },
        setup: 'gcs-bucket',
      }
    }
    case 'mongodb': {
      if (env.NVISY_TEST_MONGODB_URL)
        return {
          input: {
            credentials: { connectionString: env.NVISY_TEST_MONGODB_URL },
            params: { database: `nvisy_indep_${suffix()}`, serverSelectionTimeoutMS: 5000 },
          },
        }
      const em = await loadEmulators()
      if (!em?.startMongoEmulator)
        return { skip: 'packages/emulators is not built', optional: true }
      const password = `pw-${suffix()}`
      const server = await em.startMongoEmulator({ port: 0, users: { nvisy: password } })
      return {
        input: {
          credentials: { username: 'nvisy', password },
          params: {
            url: server.url,
            database: `nvisy_indep_${suffix()}`,
            serverSelectionTimeoutMS: 5000,
          },
        },
        close: () => server.close(),
      }
    }
    case 'pinecone': {
      const em = await loadEmulators()
      if (!em?.startPineconeEmulator)
        return { skip: 'packages/emulators is not built', optional: true }
      const apiKey = `emulator-${suffix()}`
      const server = await em.startPineconeEmulator({
        apiKey,
        indexes: [{ name: 'main', dimension: 8, metric: 'cosine' }],
      })
      return {
        input: {
          credentials: { apiKey },
          params: { index: 'main', controlPlaneUrl: server.url, maxRetries: 0 },
        },
        close: () => server.close(),
      }
    }
    case 'neo4j': {
      if (env.NVISY_TEST_NEO4J_URL)
        return {
          input: {
            credentials: {
              user: env.NVISY_TEST_NEO4J_USER ?? 'neo4j',
              password: env.NVISY_TEST_NEO4J_PASSWORD ?? '',
            },
            params: {
              url: env.NVISY_TEST_NEO4J_URL,
              ...(env.NVISY_TEST_NEO4J_DATABASE ? { database: env.NVISY_TEST_NEO4J_DATABASE } : {}),
            },
          },
        }
      const em = await loadEmulators()
      if (!em?.startNeo4jEmulator)
        return { skip: 'packages/emulators is not built', optional: true }
      const password = `pw-${suffix()}`
      const server = await em.startNeo4jEmulator({ port: 0, auth: { user: 'neo4j', password } })
      return {
        input: { credentials: { user: 'neo4j', password }, params: { url: server.url } },
        close: () => server.close(),
      }
    }
    case 'elasticsearch':
    case 'opensearch': {
      const upper = id.toUpperCase()
      if (env[`NVISY_TEST_${upper}_URL`]) {
        const user = env[`NVISY_TEST_${upper}_USERNAME`]
        const password = env[`NVISY_TEST_${upper}_PASSWORD`]
        const apiKey = id === 'elasticsearch' ? env.NVISY_TEST_ELASTICSEARCH_API_KEY : undefined
        return {
          input: {
            credentials: apiKey ? { apiKey } : user && password ? { username: user, password } : {},
            params: { url: env[`NVISY_TEST_${upper}_URL`], maxRetries: 0 },
          },
        }
      }
      const em = await loadEmulators()
      if (!em?.startSearchEmulator)
        return { skip: 'packages/emulators is not built', optional: true }
      const password = `pw-${suffix()}`
      const server = await em.startSearchEmulator({ flavor: id, users: { nvisy: password } })
      return {
        input: {
          credentials: { username: 'nvisy', password },
          params: { url: server.url, maxRetries: 0 },
        },
        close: () => server.close(),
      }
    }
    default:
      return { skip: `no test server is known for provider "${id}"`, optional: true }
  }
}

// ---------------------------------------------------------------------------------------
// The consumer: a plain node script run inside the temp project.

const CONSUMER = `// Written by scripts/check-independence.mjs: a user of the package, nothing else.
import { readFileSync } from 'node:fs'

const packageName = process.env.NVISY_PACKAGE
const target = process.env.NVISY_TARGET ? JSON.parse(process.env.NVISY_TARGET) : undefined
const result = { describe: false, check: undefined }

const withTimeout = (promise, ms, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(what + ' timed out after ' + ms + 'ms')), ms).unref()),
  ])

async function setup(step, params) {
  if (step === 's3-bucket') {
    const { S3Client, CreateBucketCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3')
    const client = new S3Client({
      region: params.region, endpoint: params.endpoint, forcePathStyle: true,
      credentials: { ...target.input.credentials },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    })
    await client.send(new CreateBucketCommand({ Bucket: params.bucket }))
    return async () => { await client.send(new DeleteBucketCommand({ Bucket: params.bucket })); client.destroy() }
  }
  if (step === 'gcs-bucket') {
    const { Storage } = await import('@google-cloud/storage')
    const storage = new Storage({ projectId: params.projectId, apiEndpoint: params.apiEndpoint })
    await storage.createBucket(params.bucket)
    return async () => { await storage.bucket(params.bucket).delete() }
  }
  throw new Error('unknown setup step ' + step)
}

try {
  const mod = await import(packageName)
  const looksLikeProvider = (v) => v && typeof v.describe === 'function' && typeof v.connect === 'function'
  const provider = looksLikeProvider(mod.default)
    ? mod.default
    : Object.entries(mod).find(([name, v]) => /Provider$/.test(name) && looksLikeProvider(v))?.[1]
  if (!provider) throw new Error('no provider export (default or *Provider) in ' + packageName)
  const manifest = JSON.parse(readFileSync(new URL(import.meta.resolve(packageName + '/package.json')), 'utf8'))
  const description = JSON.parse(JSON.stringify(provider.describe()))
  if (typeof description.id !== 'string' || !description.id) throw new Error('describe(): no id')
  if (description.version !== manifest.version)
    throw new Error('describe().version ' + description.version + ' is not the package version ' + manifest.version)
  if (!description.schemas?.credentials || !description.schemas?.params)
    throw new Error('describe(): no credentials/params schemas')
  if (typeof mod.VERSION === 'string' && mod.VERSION !== manifest.version)
    throw new Error('VERSION ' + mod.VERSION + ' is not the package version ' + manifest.version)
  result.describe = true
  result.id = description.id
  if (target?.input) {
    const undo = target.setup ? await withTimeout(setup(target.setup, target.input.params), 30000, 'setup') : undefined
    try {
      const connection = await withTimeout(provider.connect(target.input), 30000, 'connect()')
      try {
        await withTimeout(connection.check(), 30000, 'check()')
        result.check = true
      } finally {
        await withTimeout(connection.close(), 10000, 'close()')
      }
    } finally {
      // The cleanup is ours, not the package's: a server that cannot delete a bucket
      // (the GCS emulator) is noted, not failed.
      await undo?.().catch((error) => { result.cleanup = String(error && error.message || error) })
    }
  }
} catch (error) {
  result.error = (error && (error.stack || error.message)) || String(error)
}
process.stdout.write('\\n@@RESULT@@' + JSON.stringify(result) + '\\n')
process.exit(result.error ? 1 : 0)
`

// A TypeScript user: strict, NodeNext, and skipLibCheck off so that a .d.ts importing a
// package the tarball does not depend on is an error here.
function consumerTypes(packageName) {
  return `import * as provider from '${packageName}'
import type { ProviderDescription } from '@nvisy/provider-core'

type IsAny<T> = 0 extends 1 & T ? true : false
const exported: Record<string, unknown> = provider
const description: ProviderDescription | undefined = undefined
const notAny: IsAny<typeof provider> = false
export { description, exported, notAny }
`
}

// ---------------------------------------------------------------------------------------
// Packing and checking one package

function readManifest(dir) {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
}

async function pack(dir, into) {
  mkdirSync(into, { recursive: true })
  const { code, out } = await run('pnpm', ['pack', '--pack-destination', into], {
    cwd: dir,
    timeoutMs: 120_000,
  })
  const tarball = readdirSync(into).find((f) => f.endsWith('.tgz'))
  if (code !== 0 || !tarball) throw new Error(`pnpm pack failed in ${dir}:\n${lastLines(out)}`)
  return join(into, tarball)
}

async function checkOne(pkg, coreTarball, workRoot) {
  const started = Date.now()
  const row = {
    name: pkg.name,
    version: pkg.manifest.version,
    install: '-',
    packages: '-',
    describe: '-',
    check: '-',
    types: '-',
    foreign: '-',
    ok: false,
    problems: [],
    notes: [],
  }
  const work = join(workRoot, pkg.id)
  const project = join(work, 'project')
  mkdirSync(project, { recursive: true })
  let target
  try {
    // Undeclared dependencies would be caught by the install check; catch an SDK map that
    // fell behind the package before anything else.
    for (const dep of Object.keys(pkg.manifest.dependencies ?? {}))
      if (!SHARED.has(dep) && !(SDKS[pkg.id] ?? []).includes(dep))
        row.problems.push(
          `dependency ${dep} is in neither SDKS.${pkg.id} nor SHARED in scripts/check-independence.mjs`,
        )

    const tarball = await pack(pkg.dir, join(work, 'tarball'))
    writeFileSync(
      join(project, 'package.json'),
      `${JSON.stringify({ name: `independence-${pkg.id}`, private: true, type: 'module' }, null, 2)}\n`,
    )
    const installStart = Date.now()
    const install = await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        '--prefer-offline',
        '--loglevel=error',
        '--cache',
        npmCache,
        coreTarball,
        tarball,
      ],
      { cwd: project, timeoutMs: 600_000 },
    )
    row.install = seconds(Date.now() - installStart)
    if (install.code !== 0) {
      row.problems.push(`npm install failed:\n${lastLines(install.out)}`)
      return row
    }

    // What the install holds.
    const nodeModules = join(project, 'node_modules')
    const installed = allInstalled(nodeModules)
    row.packages = String(installed.size)
    const foreign = []
    for (const [other, sdks] of Object.entries(SDKS)) {
      if (other === pkg.id) continue
      for (const sdk of sdks) if (installed.has(sdk)) foreign.push(`${sdk} (${other})`)
    }
    row.foreign = foreign.length ? foreign.join(', ') : 'none'
    if (foreign.length) row.problems.push(`the install holds other providers' SDKs: ${row.foreign}`)
    const nvisy = [...installed].filter((n) => n.startsWith('@nvisy/'))
    const extra = nvisy.filter((n) => n !== pkg.name && n !== '@nvisy/provider-core')
    if (extra.length)
      row.problems.push(`the install holds other @nvisy packages: ${extra.join(', ')}`)
    const cores = copiesOf(nodeModules, '@nvisy/provider-core')
    if (cores.length !== 1)
      row.problems.push(
        `expected one @nvisy/provider-core, found ${cores.length}: ${cores.map((p) => relative(project, p)).join(', ')}`,
      )

    // Import, describe, connect + check.
    target = await targetFor(pkg.id, work)
    if (target.skip) {
      row.notes.push(`connect skipped: ${target.skip}`)
      if (requireServices && !target.optional) row.problems.push(`no test server: ${target.skip}`)
    }
    writeFileSync(join(project, 'consumer.mjs'), CONSUMER)
    const consumer = await run(process.execPath, ['consumer.mjs'], {
      cwd: project,
      timeoutMs: 120_000,
      env: {
        NVISY_PACKAGE: pkg.name,
        NVISY_TARGET: target.input
          ? JSON.stringify({ input: target.input, setup: target.setup })
          : '',
      },
    })
    const line = consumer.out.split('\n').find((l) => l.startsWith('@@RESULT@@'))
    const result = line ? JSON.parse(line.slice('@@RESULT@@'.length)) : { error: consumer.out }
    row.describe = result.describe ? `ok (${result.id})` : 'FAIL'
    row.check = target.input ? (result.check ? 'ok' : 'FAIL') : 'skipped'
    if (result.error) row.problems.push(`consumer: ${lastLines(result.error, 12)}`)
    if (result.cleanup) row.notes.push(`test cleanup failed (ignored): ${result.cleanup}`)

    // Imports the published files make of packages the tarball does not declare: they
    // work here only by hoisting, and break under pnpm or another install layout.
    for (const name of [pkg.name, '@nvisy/provider-core']) {
      const undeclared = undeclaredImports(join(nodeModules, name))
      if (undeclared.length)
        row.problems.push(`${name} imports undeclared packages: ${undeclared.join('; ')}`)
    }

    // A TypeScript user, typechecked for all packages at once at the end.
    writeFileSync(join(project, 'consumer.ts'), consumerTypes(pkg.name))
    row.project = project
  } catch (error) {
    row.problems.push(error.stack ?? String(error))
  } finally {
    await target?.close?.().catch(() => {})
    row.time = seconds(Date.now() - started)
    row.ok = row.problems.length === 0
  }
  return row
}

// ---------------------------------------------------------------------------------------
// Main

function publishedProviders() {
  const out = []
  for (const entry of readdirSync(join(repoRoot, 'packages')).sort()) {
    const dir = join(repoRoot, 'packages', entry)
    if (!entry.startsWith('provider-') || !existsSync(join(dir, 'package.json'))) continue
    const manifest = readManifest(dir)
    if (manifest.private) continue
    if (manifest.name === '@nvisy/provider-core' || manifest.name === '@nvisy/provider-testkit')
      continue
    out.push({ id: entry.slice('provider-'.length), dir, name: manifest.name, manifest })
  }
  return out
}

/**
 * One TypeScript program over every consumer.ts (strict, NodeNext, skipLibCheck off: a
 * published .d.ts that fails to resolve an import or does not typecheck is an error).
 * Each file resolves packages from its own project's node_modules. One program, not one per
 * package: @types/node and shared SDK types are checked once (about 10x faster).
 */
async function typecheckAll(rows, workRoot) {
  const withProject = rows.filter((r) => r.project)
  if (withProject.length === 0) return
  const startedAt = Date.now()
  writeFileSync(
    join(workRoot, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(repoRoot, 'node_modules', '@types')],
        },
        files: withProject.map((r) => relative(workRoot, join(r.project, 'consumer.ts'))),
      },
      null,
      2,
    )}\n`,
  )
  const types = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], {
    cwd: workRoot,
    timeoutMs: 600_000,
  })
  const errors = types.out.split('\n').filter((line) => /error TS\d+/.test(line))
  for (const row of withProject) {
    const prefix = `${relative(workRoot, row.project)}/`
    const mine = errors.filter((line) => line.startsWith(prefix))
    // Only errors in our code count: a third-party SDK's own .d.ts is not ours to fix.
    const ours = mine.filter(
      (line) => line.startsWith(`${prefix}consumer.ts`) || line.includes('/node_modules/@nvisy/'),
    )
    row.types = ours.length ? 'FAIL' : 'ok'
    if (ours.length) {
      row.problems.push(`typecheck of a consumer:\n${ours.slice(0, 8).join('\n')}`)
      row.ok = false
    }
    if (mine.length > ours.length)
      row.notes.push(
        `${mine.length - ours.length} type error(s) inside third-party .d.ts (ignored)`,
      )
  }
  if (types.code !== 0 && errors.length === 0) {
    for (const row of withProject) {
      row.types = 'FAIL'
      row.ok = false
      row.problems.push(`tsc failed:\n${lastLines(types.out)}`)
    }
  }
  console.log(`  typechecked ${withProject.length} consumers in ${seconds(Date.now() - startedAt)}`)
}

function table(rows) {
  const columns = [
    ['package', (r) => r.name],
    ['version', (r) => r.version],
    ['install', (r) => r.install],
    ['pkgs', (r) => r.packages],
    ['describe', (r) => r.describe],
    ['connect+check', (r) => r.check],
    ['types', (r) => r.types],
    ['foreign SDKs', (r) => r.foreign],
    ['time', (r) => r.time],
    ['result', (r) => (r.ok ? 'PASS' : 'FAIL')],
  ]
  const cells = rows.map((r) => columns.map(([, f]) => String(f(r))))
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (values) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd()
  return [
    line(columns.map(([h]) => h)),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
  ].join('\n')
}

async function main() {
  const started = Date.now()
  let providers = publishedProviders()
  if (only) providers = providers.filter((p) => only.includes(p.id) || only.includes(p.name))
  if (providers.length === 0) {
    console.error('check-independence: no provider package selected')
    process.exit(1)
  }
  for (const p of providers)
    if (!existsSync(join(p.dir, 'dist', 'index.js'))) {
      console.error(`check-independence: ${p.name} is not built (run pnpm build first)`)
      process.exit(1)
    }
  if (!existsSync(tsc)) {
    console.error('check-independence: typescript is not installed at the workspace root')
    process.exit(1)
  }
  mkdirSync(npmCache, { recursive: true })
  const workRoot = mkdtempSync(join(tmpdir(), 'nvisy-independence-'))
  console.log(
    `check-independence: ${providers.length} providers, ${concurrency} at a time, in ${workRoot} (npm cache ${npmCache})`,
  )

  const coreTarball = await pack(
    join(repoRoot, 'packages', 'provider-core'),
    join(workRoot, 'core'),
  )
  const rows = []
  const queue = [...providers]
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, async () => {
      for (let pkg = queue.shift(); pkg; pkg = queue.shift()) {
        const row = await checkOne(pkg, coreTarball, workRoot)
        console.log(`  ${row.ok ? 'ran ' : 'FAIL'} ${row.name} (${row.time})`)
        rows.push(row)
      }
    }),
  )
  rows.sort((a, b) => a.name.localeCompare(b.name))
  await typecheckAll(rows, workRoot)

  console.log(`\n${table(rows)}\n`)
  for (const row of rows) {
    for (const note of row.notes) console.log(`note  ${row.name}: ${note}`)
    for (const problem of row.problems) console.log(`FAIL  ${row.name}: ${problem}`)
  }
  const failed = rows.filter((r) => !r.ok)
  if (failed.length === 0 && !keep) rmSync(workRoot, { recursive: true, force: true })
  else console.log(`\nwork dir kept: ${workRoot}`)
  console.log(
    `\ncheck-independence: ${failed.length ? `${failed.length} of ${rows.length} providers FAILED` : `all ${rows.length} providers pass`} (${seconds(Date.now() - started)})`,
  )
  process.exit(failed.length ? 1 : 0)
}

await main()
