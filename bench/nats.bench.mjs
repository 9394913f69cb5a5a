#!/usr/bin/env node
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runJsonChild } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const packageDir = join(here, '..', 'packages', 'provider-nats')
const requireFromPackage = createRequire(join(packageDir, 'package.json'))

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback
}

const count = Number(arg('count', '1000000'))
const window = Number(arg('window', '256'))
const batchSize = Number(arg('batch', '1000'))
const url = arg('url', process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222')
const phase = arg('phase', '')

async function importFromPackage(specifier) {
  return import(pathToFileURL(requireFromPackage.resolve(specifier)).href)
}

/** ~200 byte JSON message body for message i. */
function payloadOf(encoder, i) {
  return encoder.encode(
    JSON.stringify({
      id: i,
      type: 'order.created',
      customer: `customer-${i % 9973}`,
      amount: (i % 100000) / 100,
      currency: 'EUR',
      createdAt: '2025-01-01T00:00:00.000Z',
      note: 'benchmark message padding to about two hundred bytes...',
    }),
  )
}

function trackRss() {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  return () => {
    clearInterval(timer)
    return Math.max(peak, process.memoryUsage().rss)
  }
}

async function runRaw(stream, subject) {
  const { connect } = await importFromPackage('@nats-io/transport-node')
  const { jetstream } = await importFromPackage('@nats-io/jetstream')
  const nc = await connect({ servers: url, noAsyncTraces: true })
  const js = jetstream(nc)
  const encoder = new TextEncoder()
  const stopRss = trackRss()
  const cpuBefore = process.cpuUsage()
  const started = process.hrtime.bigint()
  let inFlight = 0
  let wake
  let failed = 0
  const settle = () => {
    inFlight--
    const resume = wake
    wake = undefined
    resume?.()
  }
  const waitForSlot = () =>
    new Promise((resolve) => {
      wake = resolve
    })
  for (let i = 0; i < count; i++) {
    while (inFlight >= window) await waitForSlot()
    inFlight++
    js.publish(subject, payloadOf(encoder, i), { msgID: `raw-${i}` }).then(settle, () => {
      failed++
      settle()
    })
  }
  while (inFlight > 0) await waitForSlot()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peakRss = stopRss()
  const cpu = process.cpuUsage(cpuBefore)
  const cpuMicrosPerMsg = (cpu.user + cpu.system) / count
  await nc.close()
  return {
    count,
    failed,
    seconds,
    msgsPerSec: count / seconds,
    peakRssMiB: peakRss / 2 ** 20,
    cpuMicrosPerMsg,
    stream,
  }
}

async function runProvider(stream, subject) {
  const { natsProvider } = await import(pathToFileURL(join(packageDir, 'dist', 'index.js')).href)
  const connection = await natsProvider.connect({
    credentials: {},
    params: { servers: url, stream },
  })
  const encoder = new TextEncoder()
  const signal = new AbortController().signal
  const stopRss = trackRss()
  const cpuBefore = process.cpuUsage()
  const started = process.hrtime.bigint()
  let written = 0
  let failed = 0
  for (let from = 0; from < count; from += batchSize) {
    const batch = []
    for (let i = from; i < Math.min(count, from + batchSize); i++) {
      batch.push({ kind: 'message', id: `provider-${i}`, payload: payloadOf(encoder, i) })
    }
    const result = await connection.write({ subject, maxInFlight: window }, batch, { signal })
    written += result.written
    failed += result.failed.length
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peakRss = stopRss()
  const cpu = process.cpuUsage(cpuBefore)
  const cpuMicrosPerMsg = (cpu.user + cpu.system) / count
  await connection.close()
  return {
    count,
    written,
    failed,
    seconds,
    msgsPerSec: count / seconds,
    peakRssMiB: peakRss / 2 ** 20,
    cpuMicrosPerMsg,
    stream,
  }
}

async function withStream(fn) {
  const { connect } = await importFromPackage('@nats-io/transport-node')
  const { jetstreamManager } = await importFromPackage('@nats-io/jetstream')
  const nc = await connect({ servers: url })
  const jsm = await jetstreamManager(nc)
  const suffix = randomBytes(4).toString('hex')
  const name = `NVISY_BENCH_${suffix.toUpperCase()}`
  await jsm.streams.add({ name, subjects: [`nvisy.bench.${suffix}.>`] })
  try {
    return await fn(
      name,
      `nvisy.bench.${suffix}.orders`,
      async () => (await jsm.streams.info(name)).state.messages,
    )
  } finally {
    await jsm.streams.delete(name).catch(() => {})
    await nc.close()
  }
}

function runChild(which) {
  return runJsonChild(
    fileURLToPath(import.meta.url),
    [
      '--phase',
      which,
      '--count',
      String(count),
      '--window',
      String(window),
      '--batch',
      String(batchSize),
      '--url',
      url,
    ],
    { name: `${which} phase` },
  )
}

if (phase === 'raw' || phase === 'provider') {
  const result = await withStream(async (stream, subject, stored) => {
    const measured =
      phase === 'raw' ? await runRaw(stream, subject) : await runProvider(stream, subject)
    return { ...measured, stored: await stored() }
  })
  process.stdout.write(JSON.stringify(result))
} else {
  // Rounds alternate raw and provider so a load change on the machine hits both; each side
  // reports its best round (the least disturbed one).
  const rounds = Math.max(1, Number(arg('rounds', '1')))
  const raws = []
  const providers = []
  for (let r = 0; r < rounds; r++) {
    raws.push(await runChild('raw'))
    providers.push(await runChild('provider'))
  }
  const best = (runs) => runs.reduce((a, b) => (b.msgsPerSec > a.msgsPerSec ? b : a))
  const raw = best(raws)
  const provider = best(providers)
  const round = (n) => Math.round(n * 100) / 100
  const summary = (run) => ({
    msgsPerSec: Math.round(run.msgsPerSec),
    seconds: round(run.seconds),
    peakRssMiB: round(run.peakRssMiB),
    cpuMicrosPerMsg: round(run.cpuMicrosPerMsg),
    stored: run.stored,
    failed: run.failed,
  })
  const report = {
    benchmark: 'nats-jetstream-publish',
    count,
    payloadBytes: payloadOf(new TextEncoder(), count - 1).length,
    window,
    batchSize,
    rounds,
    node: process.version,
    raw: summary(raw),
    provider: summary(provider),
    ratio: round(provider.msgsPerSec / raw.msgsPerSec),
    cpuRatio: round(raw.cpuMicrosPerMsg / provider.cpuMicrosPerMsg),
    target: 0.7,
  }
  console.log(JSON.stringify(report, null, 2))
  const short = [...raws, ...providers].filter((run) => run.stored !== count)
  if (short.length > 0) {
    console.error(
      `a run stored fewer than ${count} messages: ${short.map((run) => run.stored).join(', ')}`,
    )
    process.exitCode = 1
  }
}
