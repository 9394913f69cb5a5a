#!/usr/bin/env node
// Installs the runtime the two ways users do, from the packed packages (what the registry
// would serve), into folders outside this repository, and runs real pipelines there:
//
//   1. a project:   npm install @nvisy/runtime @nvisy/provider-fs @nvisy/provider-postgres
//                   then `npx nvisy run pipelines/copy.json` with the providers named in
//                   nvisy.config.json beside the pipeline
//   2. global:      npm install -g @nvisy/runtime @nvisy/provider-fs, then `nvisy run` in a
//                   folder that has no node_modules at all
//
// Each run's output is compared byte for byte (sha256) with its input. Assumes
// `pnpm build` ran. Exits non-zero on any failure.
//
//   node scripts/check-user-install.mjs [--keep]
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
const keep = process.argv.includes('--keep')
const npmCache =
  process.env.NVISY_NPM_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvisy', 'npm')
const postgresUrl = process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

// The packages a user installs, and the workspace packages they depend on.
const PACKAGES = {
  '@nvisy/provider-core': 'packages/provider-core',
  '@nvisy/protocol': 'packages/protocol',
  '@nvisy/vault': 'packages/vault',
  '@nvisy/runtime': 'apps/runtime',
  '@nvisy/provider-fs': 'packages/provider-fs',
  '@nvisy/provider-postgres': 'packages/provider-postgres',
}

function run(cmd, args, { cwd, env, timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, npm_config_cache: npmCache, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      out += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} (in ${cwd}) exited ${code}:\n${out.trim().split('\n').slice(-30).join('\n')}`,
          ),
        )
    })
  })
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex')

function writeFiles(root, count) {
  mkdirSync(join(root, 'files', 'nested'), { recursive: true })
  const names = []
  for (let i = 0; i < count; i++) {
    const name = i % 3 === 0 ? `files/nested/f${i}.bin` : `files/f${i}.bin`
    const bytes = Buffer.alloc(1000 + i * 257)
    for (let j = 0; j < bytes.length; j++) bytes[j] = (i * 31 + j * 7) & 0xff
    writeFileSync(join(root, name), bytes)
    names.push(name)
  }
  return names
}

function copyPipeline(id, from, to) {
  mkdirSync(to, { recursive: true })
  return {
    id,
    nodes: [
      {
        id: 'src',
        role: 'source',
        provider: 'fs',
        connection: { params: { root: from, readOnly: true } },
        stream: { kind: 'blob', prefix: 'files/' },
      },
      {
        id: 'dst',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: to } },
        stream: { kind: 'blob' },
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
  }
}

function assertSameFiles(names, from, to, what) {
  for (const name of names) {
    const target = join(to, name)
    if (!existsSync(target)) throw new Error(`${what}: ${name} was not copied`)
    if (sha256(join(from, name)) !== sha256(target)) throw new Error(`${what}: ${name} differs`)
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'nvisy-user-install-'))
  let failed = false
  try {
    // Pack every package as the registry would serve it.
    const tarballs = {}
    for (const [name, dir] of Object.entries(PACKAGES)) {
      const into = join(work, 'tarballs', name.replace('/', '+'))
      mkdirSync(into, { recursive: true })
      await run('pnpm', ['pack', '--pack-destination', into], { cwd: join(repoRoot, dir) })
      tarballs[name] = join(
        into,
        readdirSync(into).find((f) => f.endsWith('.tgz')),
      )
    }

    // 1. A project folder: npm install, then npx nvisy run with nvisy.config.json.
    {
      const started = Date.now()
      const project = join(work, 'project')
      mkdirSync(join(project, 'pipelines'), { recursive: true })
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'etl', private: true, type: 'module' }),
      )
      await run('npm', ['install', '--no-audit', '--no-fund', ...Object.values(tarballs)], {
        cwd: project,
      })
      const data = join(project, 'data')
      const names = writeFiles(data, 12)
      writeFileSync(
        join(project, 'pipelines', 'nvisy.config.json'),
        JSON.stringify({ providers: ['@nvisy/provider-fs', '@nvisy/provider-postgres'] }),
      )
      writeFileSync(
        join(project, 'pipelines', 'copy.json'),
        JSON.stringify(copyPipeline('user-copy', data, join(project, 'out'))),
      )
      await run(
        'npx',
        [
          '--no-install',
          'nvisy',
          'run',
          'pipelines/copy.json',
          '--config',
          'pipelines/nvisy.config.json',
          '--checkpoints',
          join(project, 'cp.json'),
        ],
        { cwd: project },
      )
      assertSameFiles(names, data, join(project, 'out'), 'project install')
      // A database provider from the same install: PostgreSQL rows to a JSONL file.
      const table = `nvisy_user_install_${process.pid}`
      await run(
        'psql',
        [
          postgresUrl,
          '-v',
          'ON_ERROR_STOP=1',
          '-qc',
          `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1000) g; ALTER TABLE ${table} ADD PRIMARY KEY (id)`,
        ],
        { cwd: project },
      )
      writeFileSync(
        join(project, 'pipelines', 'pg.json'),
        JSON.stringify({
          id: 'user-pg',
          nodes: [
            {
              id: 'rows',
              role: 'source',
              provider: 'postgres',
              connection: { params: {}, credentials: { url: postgresUrl } },
              stream: { table },
            },
            {
              id: 'file',
              role: 'sink',
              provider: 'fs',
              connection: { params: { root: join(project, 'out') } },
              stream: { kind: 'document', file: `${table}.jsonl` },
            },
          ],
          edges: [{ from: 'rows', to: 'file' }],
        }),
      )
      try {
        await run(
          'npx',
          [
            '--no-install',
            'nvisy',
            'run',
            'pipelines/pg.json',
            '--config',
            'pipelines/nvisy.config.json',
            '--checkpoints',
            join(project, 'cp-pg.json'),
          ],
          { cwd: project },
        )
        const lines = readFileSync(join(project, 'out', `${table}.jsonl`), 'utf8')
          .trim()
          .split('\n')
        if (lines.length !== 1000)
          throw new Error(
            `project install: PostgreSQL -> JSONL wrote ${lines.length} lines, expected 1000`,
          )
        console.log(
          `ok  project install: npx nvisy run (fs copy of ${names.length} files, PostgreSQL -> JSONL 1000 rows) ${((Date.now() - started) / 1000).toFixed(1)}s`,
        )
      } catch (error) {
        throw new Error(`project install, PostgreSQL pipeline: ${error.message}`)
      } finally {
        await run('psql', [postgresUrl, '-qc', `DROP TABLE IF EXISTS ${table}`]).catch(() => {})
      }
    }

    // 2. A global install: nvisy on PATH, run from a folder with no node_modules.
    {
      const started = Date.now()
      const prefix = join(work, 'global')
      await run(
        'npm',
        [
          'install',
          '-g',
          '--prefix',
          prefix,
          '--no-audit',
          '--no-fund',
          tarballs['@nvisy/runtime'],
          tarballs['@nvisy/provider-fs'],
          tarballs['@nvisy/provider-core'],
          tarballs['@nvisy/protocol'],
          tarballs['@nvisy/vault'],
        ],
        { cwd: work },
      )
      const elsewhere = join(work, 'elsewhere')
      mkdirSync(elsewhere, { recursive: true })
      const data = join(elsewhere, 'data')
      const names = writeFiles(data, 5)
      writeFileSync(
        join(elsewhere, 'copy.json'),
        JSON.stringify(copyPipeline('global-copy', data, join(elsewhere, 'out'))),
      )
      const env = { PATH: `${join(prefix, 'bin')}:${process.env.PATH}` }
      await run(
        'nvisy',
        [
          'run',
          'copy.json',
          '--provider',
          '@nvisy/provider-fs',
          '--checkpoints',
          join(elsewhere, 'cp.json'),
        ],
        { cwd: elsewhere, env },
      )
      assertSameFiles(names, data, join(elsewhere, 'out'), 'global install')
      console.log(
        `ok  global install: nvisy run in a folder without node_modules (${names.length} files) ${((Date.now() - started) / 1000).toFixed(1)}s`,
      )
    }
  } catch (error) {
    failed = true
    console.error(`FAIL ${error.message}`)
  } finally {
    if (keep) console.log(`kept ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
  process.exit(failed ? 1 : 0)
}

await main()
