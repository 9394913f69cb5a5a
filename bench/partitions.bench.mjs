#!/usr/bin/env node
// Partitioned runs across `nvisy serve` instances (issue 18): the same PostgreSQL -> PostgreSQL
// copy of one table, started over NATS with `partitions: 8`, served by
//   - one instance running one partition at a time (the baseline of the ratios),
//   - two instances, one partition at a time each,
//   - one instance running two partitions at once (in-process partitions),
// plus the same copy unpartitioned on one instance, for reference. For each: rows/s, the
// runtime's CPU seconds per million rows (all instances, from /proc), the machine's CPU per
// million rows (runtimes + PostgreSQL + NATS, from /proc/stat), peak RSS per instance, and the
// target's digest checked against the source's (by PostgreSQL). Ratios are against the
// baseline in this run. On a 2-core machine the database shares the cores with the runtimes.
//
//   node bench/partitions.bench.mjs [--rows 1000000] [--partitions 8]
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { psqlClient } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..')
const cli = join(repo, 'apps', 'runtime', 'dist', 'cli.js')
// The NATS client is a dependency of the runtime, not of the repository root.
const requireRuntime = createRequire(join(repo, 'apps', 'runtime', 'package.json'))
const { connect } = await import(requireRuntime.resolve('@nats-io/transport-node'))
const { jetstream, jetstreamManager } = await import(requireRuntime.resolve('@nats-io/jetstream'))
const { createCurve } = await import(requireRuntime.resolve('@nats-io/nkeys'))
// Every instance of a group shares the runtime seed: a partition's credentials are sealed with it.
const runtimeSeed = new TextDecoder().decode(createCurve().getSeed())

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    partitions: { type: 'string', default: '8' },
    nats: { type: 'string', default: process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
    url: {
      type: 'string',
      default: process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
})
const ROWS = Number(args.rows)
const PARTITIONS = Number(args.partitions)
const log = (message) => process.stderr.write(`partitions: ${message}\n`)

const { env: psqlEnv, psql, sliceDigest } = psqlClient(args.url)

const suffix = randomBytes(3).toString('hex')
const schema = `nvisy_bench_parts_${suffix}`
const work = join(os.tmpdir(), `nvisy-bench-partitions-${suffix}`)
mkdirSync(work, { recursive: true })
const config = join(work, 'nvisy.config.json')
writeFileSync(config, JSON.stringify({ providers: ['@nvisy/provider-postgres'] }))
const naming = {
  prefix: `nvisybench.parts${suffix}.v1`,
  events: `NVISY_BENCH_EVENTS_${suffix}`,
  checkpoints: `nvisy-bench-checkpoints-${suffix}`,
  queue: `nvisy-bench-${suffix}`,
  nonces: `nvisy-bench-nonces-${suffix}`,
  work: `NVISY_BENCH_WORK_${suffix}`,
  runs: `nvisy-bench-runs-${suffix}`,
}

const digest = (table) => sliceDigest(table, 'id, n, name, amount, at, doc')

/** Busy and total jiffies of the whole machine. */
function machineTicks() {
  const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n')
  const fields = cpu.trim().split(/\s+/).slice(1).map(Number)
  const idle = fields[3] + (fields[4] ?? 0)
  const total = fields.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

/** CPU seconds (user + system) and peak RSS (MiB) of a live process. */
function processUsage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0)
  return { cpuSeconds: ticks / 100, peakRssMiB: Math.round(hwm / 1024) }
}

function serve(concurrency) {
  const child = spawn(
    process.execPath,
    [
      cli,
      'serve',
      '--config',
      config,
      '--dev-plain-credentials',
      '--subject-prefix',
      naming.prefix,
      '--events-stream',
      naming.events,
      '--checkpoint-bucket',
      naming.checkpoints,
      '--queue-group',
      naming.queue,
      '--nonce-bucket',
      naming.nonces,
      '--work-stream',
      naming.work,
      '--runs-bucket',
      naming.runs,
      '--partition-concurrency',
      String(concurrency),
      '--log-level',
      'warn',
    ],
    {
      cwd: repo,
      env: { ...process.env, NVISY_NATS_URL: args.nats, NVISY_RUNTIME_SEED: runtimeSeed },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    err += chunk
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return { child, exited, stderr: () => err }
}

async function stopAll(instances) {
  for (const instance of instances) instance.child.kill('SIGTERM')
  await Promise.all(instances.map((instance) => instance.exited))
}

const encoder = new TextEncoder()
const nc = await connect({ servers: args.nats, noAsyncTraces: true })
const js = jetstream(nc)

async function request(subject, body, timeout = 600_000) {
  const reply = await nc.request(subject, encoder.encode(JSON.stringify(body)), { timeout })
  return JSON.parse(new TextDecoder().decode(reply.data))
}

/** Wait for the runtime to answer the catalog (all instances joined). */
async function waitReady(instances) {
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      await request(`${naming.prefix}.providers`, {}, 2_000)
      // Every instance must be serving before the run starts.
      if (instances.every((i) => i.child.exitCode === null)) {
        await new Promise((resolve) => setTimeout(resolve, 1500))
        return
      }
    } catch {}
    if (Date.now() > deadline)
      throw new Error(`nvisy serve did not answer:\n${instances.map((i) => i.stderr()).join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function terminalEvent(runId) {
  const consumer = await js.consumers.get(naming.events, {
    filter_subjects: `${naming.prefix}.events.${runId}`,
  })
  const messages = await consumer.consume()
  for await (const message of messages) {
    const event = message.json()
    if (['completed', 'partial', 'failed', 'cancelled'].includes(event.type)) {
      messages.stop()
      return event
    }
  }
  throw new Error(`no terminal event for ${runId}`)
}

function pipeline(id, target) {
  const connection = {
    params: {
      host: psqlEnv.PGHOST,
      port: Number(psqlEnv.PGPORT),
      database: psqlEnv.PGDATABASE,
      schema,
    },
    credentials: { user: psqlEnv.PGUSER },
  }
  return {
    id,
    nodes: [
      { id: 'src', role: 'source', provider: 'postgres', connection, stream: { table: 'source' } },
      {
        id: 'dst',
        role: 'sink',
        provider: 'postgres',
        connection,
        stream: { table: target, mode: 'upsert' },
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
  }
}

async function scenario(name, { instances: count, concurrency, partitions }) {
  const target = `target_${name.replace(/[^a-z0-9]/gi, '_')}`
  psql(`CREATE TABLE ${schema}.${target} (LIKE ${schema}.source INCLUDING ALL)`)
  const instances = Array.from({ length: count }, () => serve(concurrency))
  await waitReady(instances)
  const runId = `bench-${name.replace(/[^a-z0-9]/gi, '-')}-${suffix}`
  const before = machineTicks()
  const started = process.hrtime.bigint()
  const reply = await request(`${naming.prefix}.runs.start`, {
    runId,
    pipeline: pipeline(`bench-${suffix}-${target}`, target),
    ...(partitions ? { partitions } : {}),
  })
  if (!reply.accepted) throw new Error(`runs.start refused: ${JSON.stringify(reply)}`)
  const end = await terminalEvent(runId)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const after = machineTicks()
  if (end.type !== 'completed') throw new Error(`${name}: ${JSON.stringify(end)}`)
  const usage = instances.map((instance) => processUsage(instance.child.pid))
  await stopAll(instances)
  const exact = digest(`${schema}.${target}`) === sourceDigest
  psql(`DROP TABLE ${schema}.${target}`)
  const runtimeCpu = usage.reduce((sum, u) => sum + u.cpuSeconds, 0)
  const result = {
    rowsPerSecond: Math.round(ROWS / seconds),
    seconds: Number(seconds.toFixed(2)),
    runtimeCpuSecondsPerMillionRows: Number(((runtimeCpu / ROWS) * 1e6).toFixed(2)),
    machineCpuSecondsPerMillionRows: Number(
      ((((after.busy - before.busy) / 100) * 1e6) / ROWS).toFixed(2),
    ),
    peakRssMiBPerInstance: usage.map((u) => u.peakRssMiB),
    exact,
  }
  log(`${name}: ${JSON.stringify(result)}`)
  if (!exact) throw new Error(`${name}: the target's digest differs from the source's`)
  return result
}

const cleanup = async () => {
  try {
    const jsm = await jetstreamManager(nc)
    for (const stream of [
      naming.events,
      naming.work,
      `KV_${naming.checkpoints}`,
      `KV_${naming.nonces}`,
      `KV_${naming.runs}`,
    ])
      await jsm.streams.delete(stream).catch(() => {})
  } catch {}
  try {
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } catch {}
  rmSync(work, { recursive: true, force: true })
}

let sourceDigest
try {
  log(`creating ${ROWS} rows`)
  psql(`CREATE SCHEMA ${schema}`)
  psql(`CREATE TABLE ${schema}.source (id bigint PRIMARY KEY, n integer, name text,
    amount numeric(14,2), at timestamptz, doc jsonb)`)
  psql(`INSERT INTO ${schema}.source SELECT g, g % 1000, md5(g::text), g * 1.25,
    timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', jsonb_build_object('g', g)
    FROM generate_series(1, ${ROWS}) g`)
  psql(`ANALYZE ${schema}.source`)
  sourceDigest = digest(`${schema}.source`)
  const load = os.loadavg()[0]

  const unpartitioned = await scenario('unpartitioned', { instances: 1, concurrency: 1 })
  const one = await scenario('1 instance x 1', {
    instances: 1,
    concurrency: 1,
    partitions: PARTITIONS,
  })
  const two = await scenario('2 instances x 1', {
    instances: 2,
    concurrency: 1,
    partitions: PARTITIONS,
  })
  const inProcess = await scenario('1 instance x 2', {
    instances: 1,
    concurrency: 2,
    partitions: PARTITIONS,
  })
  const ratio = (a, b) => Number((a / b).toFixed(2))
  const report = {
    rows: ROWS,
    partitions: PARTITIONS,
    cores: os.availableParallelism(),
    loadAverageAtStart: Number(load.toFixed(2)),
    results: {
      unpartitioned,
      '1 instance x 1 partition at a time': one,
      '2 instances x 1 partition at a time': two,
      '1 instance x 2 partitions at a time': inProcess,
    },
    ratios: {
      'speed, 2 instances / 1 instance': ratio(two.rowsPerSecond, one.rowsPerSecond),
      'speed, 1 instance x 2 / 1 instance x 1': ratio(inProcess.rowsPerSecond, one.rowsPerSecond),
      'speed, 1 instance x 1 (8 partitions) / unpartitioned': ratio(
        one.rowsPerSecond,
        unpartitioned.rowsPerSecond,
      ),
      'runtime CPU per row, 2 instances / 1 instance': ratio(
        two.runtimeCpuSecondsPerMillionRows,
        one.runtimeCpuSecondsPerMillionRows,
      ),
      'runtime CPU per row, 1 instance x 2 / 1 instance x 1': ratio(
        inProcess.runtimeCpuSecondsPerMillionRows,
        one.runtimeCpuSecondsPerMillionRows,
      ),
      'machine CPU per row, 2 instances / 1 instance': ratio(
        two.machineCpuSecondsPerMillionRows,
        one.machineCpuSecondsPerMillionRows,
      ),
    },
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
} finally {
  await cleanup()
  await nc.close()
}
