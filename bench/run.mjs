#!/usr/bin/env node
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
// Runs every benchmark (bench/*.bench.mjs) one after another, each in its own process, and
// writes bench/results/latest.json plus a Markdown table of the ratios each one measured
// against its baseline in the same run. Benchmarks import built packages: `pnpm bench`
// builds first.
//
//   pnpm bench                    # everything, full sizes
//   pnpm bench -- --only redis    # one benchmark
//   pnpm bench -- --quick         # small sizes, to check that they run
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
// `pnpm bench -- --only x` hands over `-- --only x`: options after a leading `--` count too.
const argv = process.argv.slice(2)
const { values: args } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    // Seconds to wait, before each benchmark, for the load average to fall under 1.
    settle: { type: 'string', default: '300' },
  },
  allowPositionals: true,
})

// Sizes for --quick: enough to exercise each path in seconds.
const quickArgs = {
  postgres: ['--rows', '20000'],
  mysql: ['--rows', '20000'],
  redis: ['--count', '20000'],
  nats: ['--count', '20000'],
  mongodb: ['--count', '20000'],
  pinecone: ['--count', '2000'],
  neo4j: ['--nodes', '2000'],
  elasticsearch: ['--count', '20000'],
  opensearch: ['--count', '20000'],
  s3: ['--objects-mib', '64', '--large-mib', '64'],
  gcs: ['--objects', '16', '--object-kib', '256', '--large-mib', '16'],
  runtime: ['--rows', '20000'],
  'peers-pgloader': ['--rows', '20000'],
  messages: ['--count', '20000'],
  'peers-rclone': ['--objects-mib', '64', '--large-mib', '64'],
  protocol: ['--count', '5000', '--rounds', '1'],
  vault: ['--count', '2000', '--rounds', '1'],
  fs: ['--files', '200', '--large-mib', '16', '--documents', '20000'],
  memory: ['--rows', '20000,50000'],
  partitions: ['--rows', '20000'],
}

// Full-size arguments a benchmark runs with here instead of its own defaults.
const fullArgs = {
  // Three alternating rounds, the median counts: one round of either side can be an outlier.
  'peers-pgloader': ['--rounds', '3'],
}

// Benchmarks that run a second time, under their own name, with other arguments. Each runs
// when its benchmark does (or when `--only` names it).
const variants = {
  // Issue 16's wide table (32 columns of every type a copy has to keep) beside the narrow one.
  'postgres-wide': {
    of: 'postgres',
    args: ['--wide', '--rows', '100000', '--rounds', '3'],
    quickArgs: ['--wide', '--rows', '5000', '--rounds', '1'],
  },
}

function lastJson(text) {
  const trimmed = text.trim()
  try {
    return JSON.parse(trimmed)
  } catch {}
  // The last line that starts a JSON object, through the end.
  const lines = trimmed.split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].startsWith('{')) continue
    try {
      return JSON.parse(lines.slice(i).join('\n'))
    } catch {}
  }
  return undefined
}

/** Every numeric `ratio` in a report, with the path that leads to it. */
function ratios(value, path = []) {
  if (!value || typeof value !== 'object') return []
  const found = []
  for (const [key, child] of Object.entries(value)) {
    if (/ratio/i.test(key) && typeof child === 'number')
      found.push({ path: [...path, key].join('.'), ratio: child })
    else found.push(...ratios(child, [...path, key]))
  }
  return found
}

/** Baselines' figures are not ours: paths through these keys are left out of our peak RSS. */
const BASELINE = /pgloader|rclone|pipe|baseline|bare|raw|driver|sdk|psql|peer|target/i

/** Our peak RSS in a report, MB: the largest `peakRss...` figure outside the baselines. */
function peakRssMB(value, path = []) {
  if (!value || typeof value !== 'object') return undefined
  let peak
  for (const [key, child] of Object.entries(value)) {
    const here = [...path, key]
    let found
    if (/^peakRss/i.test(key) && typeof child === 'number') {
      if (!here.some((k) => BASELINE.test(k)))
        found = /bytes$/i.test(key) ? child / 1024 / 1024 : child
    } else found = peakRssMB(child, here)
    if (found !== undefined) peak = Math.max(peak ?? 0, found)
  }
  return peak
}

function run(file, extra) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--expose-gc', join(here, file), ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.on('close', (code) => resolve({ code, stdout, seconds: (Date.now() - started) / 1000 }))
  })
}

const only = args.only?.split(',')
const jobs = []
for (const file of readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .sort()) {
  const name = file.replace('.bench.mjs', '')
  if (!only || only.includes(name))
    jobs.push({ name, file, extra: args.quick ? (quickArgs[name] ?? []) : (fullArgs[name] ?? []) })
  for (const [variant, { of, args: full, quickArgs: quick }] of Object.entries(variants))
    if (of === name && (!only || only.includes(name) || only.includes(variant)))
      jobs.push({ name: variant, file, extra: args.quick ? quick : full })
}

const results = {}
for (const { name, file, extra } of jobs) {
  // Let the machine settle after the previous benchmark (its servers, its disk writes):
  // start at a 1-minute load average under 1, waiting up to --settle seconds for it.
  const settleUntil = Date.now() + Number(args.settle) * 1000
  while (os.loadavg()[0] >= 1 && Date.now() < settleUntil)
    await new Promise((resolve) => setTimeout(resolve, 5000))
  // The 1-minute load average as the benchmark starts (quiet means under 1).
  const loadBefore = Number(os.loadavg()[0].toFixed(2))
  console.error(`\n=== ${name} ${extra.join(' ')} (load average ${loadBefore})`)
  const { code, stdout, seconds } = await run(file, extra)
  const report = lastJson(stdout)
  results[name] = {
    exitCode: code,
    seconds,
    loadBefore,
    peakRssMB: peakRssMB(report),
    report: report ?? null,
    ratios: ratios(report),
  }
  if (code !== 0 || !report)
    console.error(`${name}: exit ${code}${report ? '' : ', no JSON report'}`)
}

mkdirSync(join(here, 'results'), { recursive: true })
const resultsFile = join(here, 'results', args.quick ? 'quick.json' : 'latest.json')
const at = new Date().toISOString()
for (const result of Object.values(results)) result.at = at
// `--only` re-runs some benchmarks: the others keep their last results (each with its `at`).
if (args.only && existsSync(resultsFile)) {
  const previous = JSON.parse(readFileSync(resultsFile, 'utf8')).results ?? {}
  for (const [name, result] of Object.entries(previous)) results[name] ??= result
}
const latest = { at, node: process.version, quick: args.quick, results }
writeFileSync(resultsFile, `${JSON.stringify(latest, null, 2)}\n`)

const rows = [
  '| benchmark | measure | ratio (ours / baseline, same run) | our peak RSS (MB) | load average at start | measured |',
  '| --- | --- | --- | --- | --- | --- |',
]
for (const [name, result] of Object.entries(results).sort(([a], [b]) => a.localeCompare(b))) {
  const when = result.at ?? at
  const peak = peakRssMB(result.report)
  const rss = peak === undefined ? '' : peak.toFixed(0)
  const load = result.loadBefore === undefined ? 'not recorded' : String(result.loadBefore)
  if (result.ratios.length === 0)
    rows.push(
      `| ${name} | ${result.exitCode === 0 ? 'no ratio reported' : `failed (exit ${result.exitCode})`} | | ${rss} | ${load} | ${when} |`,
    )
  for (const { path, ratio } of result.ratios)
    rows.push(`| ${name} | ${path} | ${ratio.toFixed(2)} | ${rss} | ${load} | ${when} |`)
}
const table = `# Benchmark ratios\n\n${latest.at}, Node ${process.version}${args.quick ? ', quick sizes' : ''}. Each ratio compares us with a baseline measured in the same run on the same machine; our peak RSS is the largest the benchmark reports for our side, and the load average is the 1-minute figure as the benchmark started (a quiet machine is under 1).\n\n${rows.join('\n')}\n`
writeFileSync(join(here, 'results', args.quick ? 'quick.md' : 'latest.md'), table)
console.log(table)
process.exit(Object.values(results).some((r) => r.exitCode !== 0) ? 1 : 0)
