#!/usr/bin/env node
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensurePackages, hasCommand, psqlClient, timedCommand } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..')
const cli = join(repo, 'apps', 'runtime', 'dist', 'cli.js')
const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000,10000000' },
    url: {
      type: 'string',
      default: process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
})
const sizes = args.rows.split(',').map(Number)
const log = (message) => process.stderr.write(`memory: ${message}\n`)
ensurePackages([{ package: 'time', present: () => hasCommand('/usr/bin/time') }], log)

const { env: psqlEnv, psql, sliceDigest } = psqlClient(args.url)

const suffix = randomBytes(3).toString('hex')
const work = join(os.tmpdir(), `nvisy-bench-memory-${suffix}`)
mkdirSync(work, { recursive: true })
writeFileSync(
  join(work, 'nvisy.config.json'),
  JSON.stringify({ providers: ['@nvisy/provider-postgres'] }),
)

const COLUMNS = `id bigint PRIMARY KEY, n integer, name text, amount numeric(14,2), at timestamptz,
  local timestamp, doc jsonb`
// md5 of the ordered md5s of 100,000-row slices (one string of 10M rows exceeds PostgreSQL's
// 1 GB limit), plus the count.
const digest = (table) => sliceDigest(table, 'id, n, name, amount, at, local, doc')

function pipeline(source, target) {
  const connection = {
    params: { host: psqlEnv.PGHOST, port: Number(psqlEnv.PGPORT), database: psqlEnv.PGDATABASE },
    credentials: { user: psqlEnv.PGUSER },
  }
  return {
    id: `memory-${target}`,
    nodes: [
      { id: 'src', role: 'source', provider: 'postgres', connection, stream: { table: source } },
      {
        id: 'dst',
        role: 'sink',
        provider: 'postgres',
        connection,
        stream: { table: target, mode: 'append' },
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
  }
}

const results = {}
const loadBefore = os.loadavg()
try {
  for (const rows of sizes) {
    const source = `bench_mem_src_${suffix}`
    const ours = `bench_mem_ours_${suffix}`
    const pipe = `bench_mem_pipe_${suffix}`
    log(`seeding ${rows.toLocaleString('en')} rows`)
    psql(`DROP TABLE IF EXISTS ${source}, ${ours}, ${pipe}`)
    psql(`CREATE TABLE ${source} (${COLUMNS})`)
    psql(`INSERT INTO ${source} SELECT g, g % 100000, 'name ' || g || repeat('x', g % 40),
      (g * 1.37)::numeric(14,2), timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
      timestamp '2020-01-01' + g * interval '1 millisecond',
      jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 7)) FROM generate_series(1, ${rows}) g`)
    psql(`VACUUM ANALYZE ${source}`)
    psql(`CREATE TABLE ${ours} (${COLUMNS}); CREATE TABLE ${pipe} (${COLUMNS})`)
    const expected = digest(source)

    const file = join(work, `p-${rows}.json`)
    writeFileSync(file, JSON.stringify(pipeline(source, ours)))
    log(`nvisy run, ${rows.toLocaleString('en')} rows`)
    const runtime = await timedCommand(
      `nvisy-${rows}`,
      process.execPath,
      [cli, 'run', file, '--no-resume'],
      { cwd: work, env: { PATH: process.env.PATH } },
    )
    log(`psql pipe, ${rows.toLocaleString('en')} rows`)
    const pipeRun = await timedCommand(
      `pipe-${rows}`,
      'sh',
      [
        '-c',
        `psql -X -q -c "\\copy ${source} TO STDOUT" | psql -X -q -c "\\copy ${pipe} FROM STDIN"`,
      ],
      { cwd: work, env: psqlEnv },
    )
    const exact = digest(ours) === expected && digest(pipe) === expected
    if (!exact) throw new Error(`the copies of ${rows} rows differ from the source`)
    results[rows] = {
      ours: {
        rowsPerSecond: Math.round(rows / runtime.seconds),
        peakRssMiB: Math.round(runtime.peakRssKb / 1024),
        cpuSeconds: Number(runtime.cpuSeconds.toFixed(2)),
      },
      pipe: {
        rowsPerSecond: Math.round(rows / pipeRun.seconds),
        peakRssMiB: Math.round(pipeRun.peakRssKb / 1024),
      },
      ratio: Number((pipeRun.seconds / runtime.seconds).toFixed(3)),
      rssRatio: Number((runtime.peakRssKb / 1024 / 256).toFixed(3)),
      verified: exact,
    }
    log(JSON.stringify({ rows, ...results[rows] }))
    psql(`DROP TABLE IF EXISTS ${source}, ${ours}, ${pipe}`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

const first = results[sizes[0]]
const last = results[sizes[sizes.length - 1]]
const report = {
  benchmark:
    'peak RSS of nvisy run (default flags): PostgreSQL -> PostgreSQL append vs the psql COPY pipe',
  node: process.version,
  loadAverage: { before: loadBefore, after: os.loadavg() },
  target: 'peak RSS <= 256 MB at every size, flat in row count',
  sizes: results,
  ...Object.fromEntries(
    sizes.flatMap((rows) => [
      [`ratio${rows >= 1e6 ? `${rows / 1e6}M` : rows}`, results[rows].ratio],
      [`rssRatio${rows >= 1e6 ? `${rows / 1e6}M` : rows}`, results[rows].rssRatio],
    ]),
  ),
  rssGrowthRatio: Number((last.ours.peakRssMiB / first.ours.peakRssMiB).toFixed(3)),
  pass: sizes.every((rows) => results[rows].ours.peakRssMiB <= 256),
}
process.stdout.write(`${JSON.stringify(report)}\n`)
