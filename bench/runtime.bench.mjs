#!/usr/bin/env node
// Runtime benchmark: what the NATS path costs on top of the executor.
//
// 1. Round-trip time of `runs.start` (median and p95 over `--requests` requests, default
//    200) with a trivial pipeline (a source with nothing to read and a sink that drops), the
//    credentials sealed like the Rust server seals them.
// 2. A PostgreSQL -> PostgreSQL copy of `--rows` rows (default 1M) run twice in this process,
//    with the same pipeline and batch sizes: once with `executePipeline` (in-memory
//    checkpoints, events dropped) and once through a dispatcher over NATS (sealed
//    credentials, events on JetStream, checkpoints in KV), timed from the `runs.start`
//    request to the `completed` event read back from JetStream. Rounds alternate the order
//    (the machine may be shared); the report gives every round and the median ratio
//    nats/in-process throughput (target: >= 0.95, i.e. under 5% overhead). Both copies are
//    checked to have the source's md5.
//
// It imports the BUILT packages (dist/). Build first:
//
//   pnpm turbo run build --filter=@nvisy/runtime... --filter=@nvisy/provider-postgres...
//   node bench/runtime.bench.mjs [--rows 1000000] [--batch 5000] [--rounds 5] [--requests 200]
//        [--mode append|upsert] [--url postgres://postgres@127.0.0.1:5432/test] [--nats nats://127.0.0.1:4222]
//
// Prints one JSON object on stdout (one line, last), then a one-line summary on stderr.
// Exits 1 only when a copy is not exact.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..')
const runtimeDir = join(repoRoot, 'apps', 'runtime')
const requireFromRuntime = createRequire(join(runtimeDir, 'package.json'))
const dist = (dir) => import(pathToFileURL(join(repoRoot, dir, 'dist', 'index.js')).href)

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback
}

const rows = Number(arg('rows', '1000000'))
const batchSize = Number(arg('batch', '5000'))
const rounds = Math.max(1, Number(arg('rounds', '5')))
const requests = Math.max(1, Number(arg('requests', '200')))
const mode = arg('mode', 'append')
const url = arg(
  'url',
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
)
const natsUrl = arg('nats', process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222')

const runtime = await import(pathToFileURL(join(runtimeDir, 'dist', 'index.js')).href)
const core = await dist('packages/provider-core')
const protocol = await dist('packages/protocol')
const { postgresProvider } = await dist('packages/provider-postgres')
const { connect } = requireFromRuntime('@nats-io/transport-node')
const { jetstream, jetstreamManager } = requireFromRuntime('@nats-io/jetstream')
const { createCurve } = requireFromRuntime('@nats-io/nkeys')
const pg = requireFromRuntime('pg')

const { Type } = core
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_bench_runtime_${suffix}`
const naming = {
  prefix: `nvisybench.${suffix}.v1`,
  eventsStream: `NVISY_BENCH_EVENTS_${suffix}`,
  checkpointBucket: `nvisy-bench-checkpoints-${suffix}`,
  queueGroup: `nvisy-runtime-bench-${suffix}`,
}
const subjects = protocol.createSubjects(naming.prefix)
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A provider with nothing to read and a sink that drops what it gets: the trivial pipeline. */
const nullProvider = core.defineProvider({
  id: 'null',
  version: '0.0.0',
  specificationVersion: core.SPECIFICATION_VERSION,
  credentials: core.EmptyObject,
  params: core.EmptyObject,
  source: {
    data: ['record'],
    stream: core.EmptyObject,
    context: Type.Object({ n: Type.Integer() }),
    ordering: 'none',
  },
  sink: { data: ['record'], stream: core.EmptyObject, idempotentBy: 'key' },
  async connect() {
    return {
      async check() {},
      async *read() {},
      async write(_stream, batch) {
        return { written: batch.length, failed: [] }
      },
      async close() {},
    }
  },
})

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

function round3(n) {
  return Math.round(n * 1000) / 1000
}

async function main() {
  const db = new pg.Pool({ connectionString: url, max: 2 })
  const server = await connect({ servers: natsUrl, noAsyncTraces: true })
  const js = jetstream(server)
  const serverKey = createCurve()
  const registry = new runtime.MapProviderRegistry([postgresProvider, nullProvider])
  const dispatcher = await runtime.startDispatcher({
    servers: natsUrl,
    registry,
    execute: runtime.executePipeline,
    serverPublicKey: serverKey.getPublicKey(),
    naming,
    instanceId: 'bench',
  })
  // Credentials to seal when the request is sent: the server binds each blob (v2) to its run,
  // node, provider and destination params, as docs/protocol.md "Sealed credentials (v2)" says.
  const pending = new Map()
  const seal = (credentials) => {
    const placeholder = `PendingSeal${pending.size}`
    pending.set(placeholder, credentials)
    return placeholder
  }
  const bind = (body) => {
    if (!body.pipeline) return body
    return {
      ...body,
      pipeline: {
        ...body.pipeline,
        nodes: body.pipeline.nodes.map((node) => {
          const credentials = pending.get(node.connection.sealedCredentials)
          if (credentials === undefined) return node
          const provider = registry.get(node.provider)
          const sealedCredentials = runtime.sealCredentials(
            serverKey,
            dispatcher.publicKey,
            credentials,
            { operation: 'run', runId: body.runId, nodeId: node.id },
            {
              provider: provider.id,
              paramsSchema: provider.definition.params,
              params: node.connection.params,
            },
          )
          return { ...node, connection: { ...node.connection, sealedCredentials } }
        }),
      },
    }
  }

  async function request(subject, body, timeout = 30_000) {
    const reply = await server.request(subject, encoder.encode(JSON.stringify(bind(body))), {
      timeout,
    })
    const parsed = JSON.parse(decoder.decode(reply.data))
    if (parsed.error) throw new Error(`${subject}: ${JSON.stringify(parsed.error)}`)
    return parsed
  }

  /** Resolves with the terminal event of a run, read from JetStream. */
  async function terminalEvent(runId) {
    const consumer = await js.consumers.get(naming.eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    try {
      for await (const message of messages) {
        const event = message.json()
        if (['completed', 'failed', 'cancelled'].includes(event.type)) return event
      }
    } finally {
      messages.stop()
    }
    throw new Error(`no terminal event for ${runId}`)
  }

  const columns =
    'id bigint PRIMARY KEY, customer integer NOT NULL, note text NOT NULL, amount numeric(14, 2) NOT NULL, created_at timestamptz NOT NULL, doc jsonb NOT NULL'
  try {
    // --- runs.start round trip -------------------------------------------------------
    const trivial = (id) => ({
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'null',
          connection: { params: {}, sealedCredentials: seal({}) },
          stream: {},
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'null',
          connection: { params: {}, sealedCredentials: seal({}) },
          stream: {},
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })
    for (let i = 0; i < 20; i++)
      await request(subjects.runsStart, { runId: `warm-${i}`, pipeline: trivial(`warm-${i}`) })
    const rtts = []
    for (let i = 0; i < requests; i++) {
      const body = { runId: `rtt-${i}`, pipeline: trivial(`rtt-${i}`) }
      const started = performance.now()
      await request(subjects.runsStart, body)
      rtts.push(performance.now() - started)
    }
    rtts.sort((a, b) => a - b)
    while (dispatcher.activeRuns().length > 0) await new Promise((r) => setTimeout(r, 20))

    // --- the copy ------------------------------------------------------------------------
    process.stderr.write(`runtime bench: creating ${rows} rows in ${schema}\n`)
    await db.query(`CREATE SCHEMA "${schema}"`)
    await db.query(`CREATE TABLE "${schema}".source (${columns})`)
    await db.query(
      `INSERT INTO "${schema}".source
       SELECT g, g % 10007, 'order note ' || md5(g::text), (g % 100000) * 1.25,
              timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1 second',
              jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 13))
       FROM generate_series(1, $1::int) g`,
      [rows],
    )
    await db.query(`VACUUM ANALYZE "${schema}".source`)
    const digest = async (table) =>
      (
        await db.query(
          `SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) AS d FROM "${schema}".${table} t`,
        )
      ).rows[0].d
    const expected = await digest('source')

    const params = (() => {
      const u = new URL(url)
      return {
        host: u.hostname,
        port: Number(u.port || 5432),
        database: u.pathname.slice(1),
        schema,
        poolSize: 2,
      }
    })()
    const credentials = () => {
      const u = new URL(url)
      return {
        user: decodeURIComponent(u.username),
        ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      }
    }
    const copyPipeline = (id, target, sealed) => ({
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'postgres',
          connection: sealed
            ? { params, sealedCredentials: seal(credentials()) }
            : { params, credentials: credentials() },
          stream: { table: 'source', pageSize: batchSize },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'postgres',
          connection: sealed
            ? { params, sealedCredentials: seal(credentials()) }
            : { params, credentials: credentials() },
          stream: { table: target, mode },
          batch: { maxItems: batchSize },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })

    async function inProcess(round) {
      const target = `target_local_${round}`
      await db.query(`CREATE TABLE "${schema}".${target} (${columns})`)
      const pipeline = copyPipeline(`local-${round}`, target, false)
      const started = performance.now()
      const summary = await runtime.executePipeline({
        runId: `local-${round}`,
        pipeline,
        registry,
        resolveConnection: async (node) => ({
          credentials: node.connection.credentials,
          params: node.connection.params,
        }),
        checkpoints: new runtime.MemoryCheckpointStore(),
        onEvent: () => {},
        signal: new AbortController().signal,
        resume: false,
      })
      const seconds = (performance.now() - started) / 1000
      if (summary.status !== 'completed') throw new Error(`in-process: ${JSON.stringify(summary)}`)
      return { seconds, target, items: summary.stats.nodes.dst.items }
    }

    async function overNats(round) {
      const target = `target_nats_${round}`
      await db.query(`CREATE TABLE "${schema}".${target} (${columns})`)
      const runId = `nats-${round}`
      const pipeline = copyPipeline(`nats-${round}`, target, true)
      const started = performance.now()
      const done = terminalEvent(runId)
      await request(subjects.runsStart, { runId, pipeline, resume: false })
      const event = await done
      const seconds = (performance.now() - started) / 1000
      if (event.type !== 'completed') throw new Error(`over NATS: ${JSON.stringify(event)}`)
      return { seconds, target, items: event.stats.nodes.dst.items }
    }

    const results = []
    let exact = true
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ['local', 'nats'] : ['nats', 'local']
      const r = {}
      for (const side of order) {
        global.gc?.()
        const cpu = process.cpuUsage()
        const result = side === 'local' ? await inProcess(round) : await overNats(round)
        const used = process.cpuUsage(cpu)
        result.cpuSeconds = (used.user + used.system) / 1e6
        const got = await digest(result.target)
        if (got !== expected) {
          exact = false
          process.stderr.write(`runtime bench: ${side} copy differs: ${got} != ${expected}\n`)
        }
        await db.query(`DROP TABLE "${schema}".${result.target}`)
        r[side] = result
      }
      const localRate = rows / r.local.seconds
      const natsRate = rows / r.nats.seconds
      results.push({
        inProcessRowsPerSecond: Math.round(localRate),
        natsRowsPerSecond: Math.round(natsRate),
        inProcessSeconds: round3(r.local.seconds),
        natsSeconds: round3(r.nats.seconds),
        overhead: round3(natsRate / localRate),
        inProcessCpuSeconds: round3(r.local.cpuSeconds),
        natsCpuSeconds: round3(r.nats.cpuSeconds),
        order: order.join(','),
      })
      process.stderr.write(
        `runtime bench: round ${round + 1}/${rounds}: in-process ${Math.round(localRate)} rows/s, nats ${Math.round(natsRate)} rows/s\n`,
      )
    }
    const sorted = [...results].sort((a, b) => a.overhead - b.overhead)
    const median = sorted[Math.floor((sorted.length - 1) / 2)]
    const middle = (values) =>
      [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]
    const cpuMedian = {
      local: middle(results.map((r) => r.inProcessCpuSeconds)),
      nats: middle(results.map((r) => r.natsCpuSeconds)),
    }
    const batches = Math.ceil(rows / batchSize)
    const perBatchOverheadMs =
      ((median.natsSeconds - median.inProcessSeconds) * 1000) / Math.max(1, batches)
    const report = {
      benchmark: 'runtime',
      rows,
      batchSize,
      mode,
      rounds: results,
      copy: {
        inProcessRowsPerSecond: median.inProcessRowsPerSecond,
        natsRowsPerSecond: median.natsRowsPerSecond,
        natsToInProcessRatio: median.overhead,
        perBatchOverheadMs: round3(perBatchOverheadMs),
        // CPU time of this process (executor, providers, and on the NATS side the dispatcher
        // and the client reading events): less sensitive to other load than wall time.
        inProcessCpuMsPer1kRows: round3((cpuMedian.local * 1e6) / rows),
        natsCpuMsPer1kRows: round3((cpuMedian.nats * 1e6) / rows),
        natsToInProcessCpuRatio: round3(cpuMedian.local / cpuMedian.nats),
        exact,
      },
      runsStartRtt: {
        requests,
        medianMs: round3(percentile(rtts, 50)),
        p95Ms: round3(percentile(rtts, 95)),
        maxMs: round3(rtts.at(-1)),
      },
      target: { natsToInProcessRatio: 0.95 },
      pass: exact && median.overhead >= 0.95,
      loadAverage: os.loadavg().map(round3),
      cpus: os.cpus().length,
      node: process.version,
    }
    process.stdout.write(`${JSON.stringify(report)}\n`)
    process.stderr.write(
      `runtime bench: CPU ${report.copy.inProcessCpuMsPer1kRows} ms/1k rows in-process, ${report.copy.natsCpuMsPer1kRows} over NATS\n`,
    )
    process.stderr.write(
      `runtime bench: ${rows} rows, in-process ${median.inProcessRowsPerSecond} rows/s, over NATS ${median.natsRowsPerSecond} rows/s (ratio ${median.overhead}, ${round3(perBatchOverheadMs)} ms/batch); runs.start RTT median ${report.runsStartRtt.medianMs} ms, p95 ${report.runsStartRtt.p95Ms} ms\n`,
    )
    if (!exact) process.exitCode = 1
  } finally {
    await dispatcher.close()
    const jsm = await jetstreamManager(server)
    await jsm.streams.delete(naming.eventsStream).catch(() => {})
    await jsm.streams.delete(`KV_${naming.checkpointBucket}`).catch(() => {})
    await server.close()
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await db.end()
  }
}

await main()
