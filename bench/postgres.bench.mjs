#!/usr/bin/env node
// PostgreSQL copy benchmark: the provider's read (keyset over the primary key, server-side
// cursor) feeding its COPY-append write, next to the `psql COPY TO STDOUT | psql COPY FROM
// STDIN` pipe, in the same run, over the same 1M-row table (bigint, int, text, numeric,
// timestamptz, timestamp, jsonb). Each side copies into its own empty table; both copies are
// checked to have the source's md5. The provider side runs in a child process so its peak
// RSS is its own.
//
// It imports the BUILT packages (dist/): Node 20 cannot run the TypeScript sources, and
// `node --experimental-strip-types` is not available there. Build first:
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/provider-postgres build
//   node bench/postgres.bench.mjs [--rows 1000000] [--batch 5000] [--rounds 3] [--url postgres://postgres@127.0.0.1:5432/test]
//
// The pipe and the provider run `rounds` times in alternating order (the machine may be
// shared); the report gives the median round's ratio, every round, the provider process's
// CPU time per row (less sensitive to other load than wall time) and the load average.
//
// Prints one JSON object on stdout (one line, for bench/run.mjs), then a one-line summary on
// stderr. Exits 1 only when a copy is not exact; `pass` in the report tells whether the
// targets (>= 0.5 of the pipe, peak RSS < 256 MB) were met.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const packageDir = join(here, '..', 'packages', 'provider-postgres')
const requireFromPackage = createRequire(join(packageDir, 'package.json'))

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback
}

const rows = Number(arg('rows', '1000000'))
const batchSize = Number(arg('batch', '5000'))
const url = arg(
  'url',
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
)
const phase = arg('phase', '')
const schema = arg('schema', `nvisy_bench_${randomBytes(4).toString('hex')}`)
const rounds = Math.max(1, Number(arg('rounds', '3')))
const wide = process.argv.includes('--wide')
/** Child phase: `wire` (pass-through) or `rows` (decoded). */
const path = arg('path', 'wire')

function trackRss() {
  let peak = process.memoryUsage().rss
  let heap = process.memoryUsage().heapUsed
  const timer = setInterval(() => {
    const usage = process.memoryUsage()
    peak = Math.max(peak, usage.rss)
    heap = Math.max(heap, usage.heapUsed)
  }, 20)
  const stop = () => {
    clearInterval(timer)
    return Math.max(peak, process.memoryUsage().rss)
  }
  stop.peakHeap = () => heap
  return stop
}

/**
 * Child process: read the source through the provider, COPY-append every batch, one write in
 * flight. `--path wire` passes the COPY text through (what a PostgreSQL -> PostgreSQL append
 * of the same column types does by default); `--path upsert` the same into an upsert (through
 * a staging table); `--path rows` decodes and encodes every row.
 * Prints the rows written, wall and CPU time, peak RSS and heap as JSON.
 */
async function runProvider() {
  const { postgresProvider } = await import(
    pathToFileURL(join(packageDir, 'dist', 'index.js')).href
  )
  const stopRss = trackRss()
  const connection = await postgresProvider.connect({
    credentials: { url },
    params: { schema, poolSize: 2 },
  })
  const signal = new AbortController().signal
  const started = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  const written = await (path === 'rows' ? copyRows : copyWire)(connection, signal)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  await connection.close()
  process.stdout.write(
    JSON.stringify({
      rows: written,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssBytes: stopRss(),
      peakHeapBytes: stopRss.peakHeap(),
    }),
  )
}

// `--path upsert` passes the COPY text through an upsert (a staging table moved by INSERT ...
// SELECT ... ON CONFLICT) into the empty target: every row an insert through the stage.
const SINK = { table: 'target_provider', mode: path === 'upsert' ? 'upsert' : 'append' }

/** The decoded path: records read, batched by `batchSize`, written. */
async function copyRows(connection, signal) {
  let batch = []
  let inFlight = Promise.resolve()
  let written = 0
  const flush = async (items) => {
    const result = await connection.write(SINK, items, { signal })
    if (result.failed.length > 0) throw result.failed[0].error
    written += result.written
  }
  for await (const item of connection.read({ table: 'orders', pageSize: batchSize }, { signal })) {
    batch.push(item.data)
    if (batch.length >= batchSize) {
      await inFlight
      inFlight = flush(batch)
      batch = []
    }
  }
  await inFlight
  if (batch.length > 0) await flush(batch)
  return written
}

/** The pass-through path: items of COPY text, written as they are. */
async function copyWire(connection, signal) {
  const format = 'postgresql-copy-text'
  const offer = await connection.wireOffer({ table: 'orders' }, format)
  if ('reason' in offer) throw new Error(`no pass-through offer: ${offer.reason}`)
  const answer = await connection.acceptWire(SINK, offer)
  if (!answer.accepted) throw new Error(`pass-through refused: ${answer.reason}`)
  let inFlight = Promise.resolve()
  let written = 0
  // The runtime's pass-through batch without a node's maxItems: 8 MB of COPY text, rows unbounded.
  const wire = { format, maxRows: 1_000_000, maxBytes: 8 * 1024 * 1024, maxAgeMs: 1000 }
  for await (const item of connection.read({ table: 'orders' }, { signal, wire })) {
    await inFlight
    inFlight = connection.write(SINK, [item.data], { signal, wire: format }).then((result) => {
      if (result.failed.length > 0) throw result.failed[0].error
      written += result.written
    })
  }
  await inFlight
  return written
}

function psql(sql) {
  return execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], {
    encoding: 'utf8',
  }).trim()
}

function runPipe() {
  const started = process.hrtime.bigint()
  const quoted = (s) => s.replace(/'/g, `'\\''`)
  execFileSync(
    'bash',
    [
      '-o',
      'pipefail',
      '-c',
      `psql '${quoted(url)}' -X -q -v ON_ERROR_STOP=1 -c 'COPY "${schema}".orders TO STDOUT' | psql '${quoted(url)}' -X -q -v ON_ERROR_STOP=1 -c 'COPY "${schema}".target_pipe FROM STDIN'`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  return Number(process.hrtime.bigint() - started) / 1e9
}

function runChild(childPath) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        // The heap `nvisy run` gives a pipeline by default (apps/runtime heap-ceiling.ts: 192 MB
        // of old space, a 48 MB young generation, i.e. 16 MB semi-spaces): without it V8 lets
        // a bare process's heap grow with garbage (the wide decoded path peaked at 300-531 MB
        // where its live data stays under 100 MB), which is not what a run of the CLI does.
        '--max-old-space-size=192',
        '--max-semi-space-size=16',
        fileURLToPath(import.meta.url),
        '--phase',
        'provider',
        '--path',
        childPath,
        '--schema',
        schema,
        '--url',
        url,
        '--batch',
        String(batchSize),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out))
        : reject(new Error(`provider phase exited with ${code}`)),
    )
  })
}

// The narrow table: 8 columns of an orders table.
const NARROW = {
  columns: `id bigint PRIMARY KEY, customer_id integer NOT NULL, status text NOT NULL, note text,
    amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, updated_at timestamp, payload jsonb`,
  fill: `SELECT g, g % 9973, (ARRAY['new','paid','shipped','returned'])[1 + g % 4],
             CASE WHEN g % 7 = 0 THEN NULL ELSE 'order note ' || md5(g::text) END,
             (g % 1000000) / 100.0,
             timestamptz '2024-01-01 00:00:00Z' + g * interval '1.000001 second',
             timestamp '2024-01-01 00:00:00' + g * interval '0.5 second',
             jsonb_build_object('sku', 'SKU-' || (g % 5000), 'qty', g % 9, 'tags', jsonb_build_array('a', g % 3))`,
}

// The wide table (--wide, issue 16): 32 columns of every kind a copy has to keep exactly
// (numeric at full precision, float4/float8 that do not round-trip through decimal text
// naively, timestamptz with microseconds, intervals, arrays, bytea, jsonb, uuid, inet,
// bit strings), some with names that need quoting.
const WIDE = {
  columns: `id bigint PRIMARY KEY, "Select" integer, "order by" text, "ünïcode" text,
    n_small numeric(6,2), n_big numeric(38,18), n_free numeric, f4 real, f8 double precision,
    i2 smallint, i8 bigint, flag boolean, d date, t time, tz timestamptz, ts timestamp,
    span interval, u uuid, addr inet, bits bit(12), vbits varbit(20), bin bytea,
    ints integer[], texts text[], nums numeric[], doc jsonb, doc_text json, note text,
    long_text text, ch char(8), vc varchar(40), money_like numeric(19,4)`,
  fill: `SELECT g, g % 1000, 'row ' || g, 'ü-' || md5(g::text),
             (g % 9999) / 100.0, (g::numeric * 1.000000000000000001) / 7, g::numeric / 3,
             (g * 0.1)::real, g * 0.1 + 0.2, (g % 32000)::smallint, g::bigint * 1000003, g % 2 = 0,
             date '2020-01-01' + (g % 3000), time '00:00:00' + g * interval '1.5 second',
             timestamptz '2024-01-01 00:00:00.000001Z' + g * interval '1.000001 second',
             timestamp '2024-01-01 00:00:00' + g * interval '0.25 second',
             make_interval(days => g % 40, secs => g % 1000 / 7.0),
             md5(g::text)::uuid, ('10.' || (g % 250) || '.' || (g % 200) || '.1')::inet,
             (g % 4096)::bit(12), (g % 1000000)::bit(20)::varbit, decode(md5(g::text), 'hex'),
             ARRAY[g, g + 1, g % 7], ARRAY['a' || g, 'b,"c"', NULL], ARRAY[g / 3.0, 0.1],
             jsonb_build_object('n', g, 'pi', 3.14159265358979, 'tags', jsonb_build_array('x', g % 5)),
             json_build_object('k', g, 'exp', 1e300)::json,
             CASE WHEN g % 5 = 0 THEN NULL ELSE E'tab\there, newline\n and \\ backslash ' || g END,
             repeat(md5(g::text), 4), lpad((g % 1000)::text, 8, '0'), 'vc-' || g,
             (g % 100000)::numeric / 7`,
}

const md5 = (table) =>
  psql(
    `SELECT count(*) || ':' || md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM "${schema}".${table} t`,
  )

async function main() {
  if (phase === 'provider') return runProvider()
  requireFromPackage.resolve('pg') // fails early when the package's dependencies are not installed
  const loadAverageBefore = os.loadavg().map((l) => Number(l.toFixed(1)))
  const { columns, fill } = wide ? WIDE : NARROW
  psql(`CREATE SCHEMA "${schema}"`)
  try {
    for (const table of ['orders', 'target_provider', 'target_pipe'])
      psql(`CREATE TABLE "${schema}".${table} (${columns})`)
    psql(`INSERT INTO "${schema}".orders ${fill} FROM generate_series(1, ${rows}) g`)
    psql(`VACUUM ANALYZE "${schema}".orders`)
    const copyBytes = Number(
      execFileSync(
        'bash',
        [
          '-c',
          `psql '${url.replace(/'/g, `'\\''`)}' -X -q -c 'COPY "${schema}".orders TO STDOUT' | wc -c`,
        ],
        { encoding: 'utf8' },
      ).trim(),
    )

    // The machine may be shared: run the two sides in alternating order, `rounds` times,
    // each into emptied tables, and report the median ratio (every round is listed too).
    // Each round: the pipe, the pass-through path and the decoded path, in a rotating order;
    // each copy is checked against the source's md5 (computed by PostgreSQL) as it ends.
    const sourceMd5 = md5('orders')
    const exact = { provider: true, decoded: true, upsert: true, pipe: true }
    const results = []
    for (let round = 0; round < rounds; round++) {
      const sides = {
        pipe: () => {
          psql(`TRUNCATE "${schema}".target_pipe`)
          const seconds = runPipe()
          exact.pipe &&= md5('target_pipe') === sourceMd5
          return seconds
        },
        wire: async () => {
          psql(`TRUNCATE "${schema}".target_provider`)
          const run = await runChild('wire')
          exact.provider &&= md5('target_provider') === sourceMd5
          return run
        },
        rows: async () => {
          psql(`TRUNCATE "${schema}".target_provider`)
          const run = await runChild('rows')
          exact.decoded &&= md5('target_provider') === sourceMd5
          return run
        },
        upsert: async () => {
          psql(`TRUNCATE "${schema}".target_provider`)
          const run = await runChild('upsert')
          exact.upsert &&= md5('target_provider') === sourceMd5
          return run
        },
      }
      const order = [
        ['pipe', 'wire', 'rows', 'upsert'],
        ['wire', 'upsert', 'rows', 'pipe'],
        ['rows', 'pipe', 'upsert', 'wire'],
      ][round % 3]
      const got = {}
      for (const side of order) got[side] = await sides[side]()
      const pipeSeconds = got.pipe
      const provider = got.wire
      const decoded = got.rows
      const upsert = got.upsert
      results.push({
        pipeSeconds,
        provider,
        decoded,
        upsert,
        ratio: pipeSeconds / provider.seconds,
        decodedRatio: pipeSeconds / decoded.seconds,
        upsertRatio: pipeSeconds / upsert.seconds,
      })
      console.error(
        `round ${round + 1}/${rounds}: pipe ${pipeSeconds.toFixed(2)} s, pass-through ${provider.seconds.toFixed(2)} s (CPU ${provider.cpuSeconds.toFixed(2)} s): ${(pipeSeconds / provider.seconds).toFixed(3)}, decoded ${decoded.seconds.toFixed(2)} s (CPU ${decoded.cpuSeconds.toFixed(2)} s): ${(pipeSeconds / decoded.seconds).toFixed(3)}, upsert passed through ${upsert.seconds.toFixed(2)} s (CPU ${upsert.cpuSeconds.toFixed(2)} s): ${(pipeSeconds / upsert.seconds).toFixed(3)}`,
      )
    }
    const median = [...results].sort((a, b) => a.ratio - b.ratio)[Math.floor(results.length / 2)]
    const { pipeSeconds, provider } = median
    const decodedMedian = [...results].sort((a, b) => a.decodedRatio - b.decodedRatio)[
      Math.floor(results.length / 2)
    ]
    const upsertMedian = [...results].sort((a, b) => a.upsertRatio - b.upsertRatio)[
      Math.floor(results.length / 2)
    ]
    const mb = copyBytes / 1e6
    const report = {
      benchmark: 'postgres read -> COPY append write',
      table: wide ? 'wide (32 columns)' : 'narrow (8 columns)',
      rows,
      batchSize,
      copyTextMB: Number(mb.toFixed(1)),
      provider: {
        seconds: Number(provider.seconds.toFixed(3)),
        rowsPerSecond: Math.round(rows / provider.seconds),
        mbPerSecond: Number((mb / provider.seconds).toFixed(1)),
        // CPU time of the provider process (user + system): less sensitive than wall time
        // to other load on the machine.
        cpuSeconds: Number(provider.cpuSeconds.toFixed(3)),
        cpuMicrosPerRow: Number(((provider.cpuSeconds * 1e6) / rows).toFixed(2)),
        peakRssMB: Number(
          (Math.max(...results.map((r) => r.provider.peakRssBytes)) / 1024 / 1024).toFixed(1),
        ),
        peakHeapUsedMB: Number((provider.peakHeapBytes / 1024 / 1024).toFixed(1)),
      },
      // The same copy decoding and encoding every row (what a copy between other types, or
      // with passThrough: false, does).
      decoded: {
        seconds: Number(decodedMedian.decoded.seconds.toFixed(3)),
        rowsPerSecond: Math.round(rows / decodedMedian.decoded.seconds),
        cpuMicrosPerRow: Number(((decodedMedian.decoded.cpuSeconds * 1e6) / rows).toFixed(2)),
        peakRssMB: Number(
          (Math.max(...results.map((r) => r.decoded.peakRssBytes)) / 1024 / 1024).toFixed(1),
        ),
      },
      // An upsert of the same rows passing the COPY text through a staging table (into the
      // empty target: each row inserted by INSERT ... SELECT ... ON CONFLICT).
      upsert: {
        seconds: Number(upsertMedian.upsert.seconds.toFixed(3)),
        rowsPerSecond: Math.round(rows / upsertMedian.upsert.seconds),
        cpuMicrosPerRow: Number(((upsertMedian.upsert.cpuSeconds * 1e6) / rows).toFixed(2)),
        peakRssMB: Number(
          (Math.max(...results.map((r) => r.upsert.peakRssBytes)) / 1024 / 1024).toFixed(1),
        ),
      },
      psqlPipe: {
        seconds: Number(pipeSeconds.toFixed(3)),
        rowsPerSecond: Math.round(rows / pipeSeconds),
        mbPerSecond: Number((mb / pipeSeconds).toFixed(1)),
      },
      ratio: Number((pipeSeconds / provider.seconds).toFixed(3)),
      decodedRatio: Number((decodedMedian.pipeSeconds / decodedMedian.decoded.seconds).toFixed(3)),
      upsertRatio: Number((upsertMedian.pipeSeconds / upsertMedian.upsert.seconds).toFixed(3)),
      rounds: results.map((r) => ({
        pipeSeconds: Number(r.pipeSeconds.toFixed(3)),
        providerSeconds: Number(r.provider.seconds.toFixed(3)),
        providerCpuMicrosPerRow: Number(((r.provider.cpuSeconds * 1e6) / rows).toFixed(2)),
        decodedSeconds: Number(r.decoded.seconds.toFixed(3)),
        decodedCpuMicrosPerRow: Number(((r.decoded.cpuSeconds * 1e6) / rows).toFixed(2)),
        upsertSeconds: Number(r.upsert.seconds.toFixed(3)),
      })),
      loadAverageBefore,
      loadAverage: os.loadavg().map((l) => Number(l.toFixed(1))),
      exact,
      targets: { minimumOfPipe: wide ? 0.6 : 0.75, maxPeakRssMB: 256 },
    }
    report.pass =
      report.ratio >= report.targets.minimumOfPipe &&
      report.provider.peakRssMB < 256 &&
      exact.provider &&
      exact.decoded &&
      exact.upsert &&
      exact.pipe
    // The JSON report is the last thing on stdout (bench/run.mjs reads it); the summary goes
    // to stderr so it is the last line a person sees.
    console.log(JSON.stringify(report))
    console.error(
      `postgres (${report.table}): pass-through ${report.provider.rowsPerSecond} rows/s (${report.provider.mbPerSecond} MB/s, peak RSS ${report.provider.peakRssMB} MB) vs psql pipe ${report.psqlPipe.rowsPerSecond} rows/s: ratio ${report.ratio} (target >= ${report.targets.minimumOfPipe}); decoded ${report.decoded.rowsPerSecond} rows/s: ${report.decodedRatio}; upsert passed through ${report.upsert.rowsPerSecond} rows/s: ${report.upsertRatio}; exact ${exact.provider && exact.decoded && exact.upsert && exact.pipe} -> ${report.pass ? 'PASS' : 'FAIL'}`,
    )
    // A missed speed target is a result; a copy that is not exact is a failure.
    if (!(exact.provider && exact.decoded && exact.upsert && exact.pipe)) process.exitCode = 1
  } finally {
    psql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  }
}

await main()
