#!/usr/bin/env node
// GCS -> GCS copy through the runtime (`executePipeline`: gcs source -> gcs sink) next to a
// bare @google-cloud/storage loop (createReadStream piped into createWriteStream) at the same
// concurrency, on the same objects, in the same run. There is no Cloud Storage here: both
// sides run against a dedicated Firebase Storage emulator (firebase-tools, started with
// scripts/services/gcs-emulator.sh on its own port and stopped at the end), so the numbers
// measure the client side against an emulator, not Cloud Storage.
//
//   pnpm build
//   node bench/gcs.bench.mjs [--objects 128] [--object-kib 1024] [--large-mib 128]
//        [--concurrency 4] [--rounds 1] [--port 9299]
//
// - Data: bucket `nvisy-bench-src-<random>` with `--objects` objects `objects/NNNNN.bin` of
//   `--object-kib` KiB (content type and user metadata set) and one `large.bin` of
//   `--large-mib` MiB (0: none).
// - ours: pipeline gcs source (stream `{}`) -> gcs sink, one object per batch, sink node
//   `concurrency: --concurrency` (that many objects in flight), sink stream `concurrency: 1`.
//   The runtime reads bodies up to 8 MiB into memory before the sink writes them (so a retry
//   can resend them); the sink sends those in one simple upload and larger ones in a streamed
//   resumable upload.
// - bare: getFiles, then `--concurrency` workers, each piping file.createReadStream() into
//   dst.file(name).createWriteStream({ resumable: size > 8 MiB, contentType, metadata }):
//   simple uploads and resumable ones for the same objects as the provider; CRC32C validation
//   on both ends (the client's default, and what the provider asks for).
// - Each side runs in its own child process (modules loaded before the clock starts; peak
//   RSS and CPU time are its own) and writes into a new bucket; the copy must hold the same
//   names, sizes, md5 and crc32c (and content type) as the source, else exit 1. The copy is
//   deleted after each side.
//
// `--rounds N` alternates which side goes first and keeps each side's best round.
// Prints one JSON object last on stdout: per side MB/s, objects/s, seconds, peak RSS MiB,
// CPU seconds (and the emulator's CPU seconds), and `ratio` = ours MB/s / bare MB/s.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline as pipe } from 'node:stream/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createMeter, runJsonChild } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..')
const { values: args } = parseArgs({
  options: {
    objects: { type: 'string', default: '128' },
    'object-kib': { type: 'string', default: '1024' },
    'large-mib': { type: 'string', default: '128' },
    concurrency: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1' },
    port: { type: 'string', default: '9299' },
    // Child side only.
    child: { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string' },
  },
})
const KiB = 1024
const MiB = 1024 * KiB
const objectCount = Number(args.objects)
const objectBytes = Number(args['object-kib']) * KiB
const largeBytes = Number(args['large-mib']) * MiB
const concurrency = Number(args.concurrency)
const rounds = Math.max(1, Number(args.rounds))
const port = Number(args.port)
const endpoint = `http://127.0.0.1:${port}`
const projectId = 'demo-nvisy'
// The sink's default resumableThresholdBytes (and the runtime's bufferBlobBytes).
const resumableThreshold = 8 * MiB
const totalObjects = objectCount + (largeBytes > 0 ? 1 : 0)
const totalBytes = objectCount * objectBytes + largeBytes

const gcsRequire = createRequire(join(repoRoot, 'packages/provider-gcs/package.json'))
const dist = (dir) => import(pathToFileURL(join(repoRoot, dir, 'dist', 'index.js')).href)
// Required on first use: the `ours` child loads only the provider's own (ESM) copy of the SDK.
const storage = () =>
  new (gcsRequire('@google-cloud/storage').Storage)({ projectId, apiEndpoint: endpoint })

// ---------------------------------------------------------------- child: one side, measured
if (args.child) {
  // Load the modules before the clock starts: module loading is not what is compared.
  const runtime = args.child === 'ours' ? await dist('apps/runtime') : undefined
  const gcs = args.child === 'ours' ? await dist('packages/provider-gcs') : undefined
  if (args.child === 'bare') gcsRequire('@google-cloud/storage')
  const { measure } = createMeter({ items: totalObjects, unit: 'objectsPerSec' })
  const cpuBefore = process.cpuUsage()
  let written = 0
  const result = await measure(args.child, async () => {
    if (args.child === 'bare') {
      const client = storage()
      const [files] = await client.bucket(args.src).getFiles()
      const dst = client.bucket(args.dst)
      let next = 0
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < files.length) {
            const file = files[next++]
            const meta = file.metadata
            await pipe(
              file.createReadStream(),
              dst.file(file.name).createWriteStream({
                resumable: Number(meta.size) > resumableThreshold,
                contentType: meta.contentType,
                metadata: meta.metadata ? { metadata: meta.metadata } : undefined,
              }),
            )
            written++
          }
        }),
      )
    } else {
      const connection = (bucket) => ({
        params: { bucket, projectId, apiEndpoint: endpoint },
        credentials: {},
      })
      const summary = await runtime.executePipeline({
        runId: `bench-gcs-${randomBytes(4).toString('hex')}`,
        pipeline: {
          id: 'bench-gcs-copy',
          nodes: [
            {
              id: 'src',
              role: 'source',
              provider: 'gcs',
              connection: connection(args.src),
              stream: {},
            },
            {
              id: 'dst',
              role: 'sink',
              provider: 'gcs',
              connection: connection(args.dst),
              // `concurrency` objects in flight: one object per batch, that many batches at once.
              stream: { concurrency: 1 },
              batch: { maxItems: 1 },
              concurrency,
            },
          ],
          edges: [{ from: 'src', to: 'dst' }],
          options: { failureBudget: 0 },
        },
        registry: new runtime.MapProviderRegistry([gcs.gcsProvider]),
        resolveConnection: async (node) => ({
          credentials: node.connection.credentials ?? {},
          params: node.connection.params,
        }),
        checkpoints: new runtime.MemoryCheckpointStore(),
        onEvent: () => {},
        signal: new AbortController().signal,
        resume: false,
      })
      if (summary.status !== 'completed')
        throw new Error(`pipeline ${summary.status}: ${JSON.stringify(summary.error ?? summary)}`)
      written = summary.stats.nodes.dst.items
    }
  })
  const cpu = process.cpuUsage(cpuBefore)
  process.stdout.write(
    JSON.stringify({ ...result, written, cpuSeconds: (cpu.user + cpu.system) / 1e6 }),
  )
  process.exit(0)
}

// ---------------------------------------------------------------- parent
const emulatorScript = join(repoRoot, 'scripts/services/gcs-emulator.sh')
// The same cache as the test setup (test/global-setup.ts): firebase-tools is installed once.
const emulatorCache =
  process.env.NVISY_GCS_EMULATOR_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvisy', 'gcs-emulator')
const emulatorEnv = { ...process.env, GCS_EMU_PORT: String(port), GCS_EMU_PROJECT: projectId }
const emulator = (command) =>
  execFileSync('bash', [emulatorScript, command, emulatorCache], {
    env: emulatorEnv,
    stdio: ['ignore', 'pipe', 'inherit'],
  }).toString()

/** The emulator process's CPU seconds so far (utime + stime from /proc), if it can be read. */
function emulatorCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN
  }
}

function runSide(side, src, dst) {
  return runJsonChild(
    fileURLToPath(import.meta.url),
    [...process.argv.slice(2), '--child', side, '--src', src, '--dst', dst],
    { name: `${side} side`, nodeArgs: ['--expose-gc'] },
  )
}

/** Name -> { size, md5Hash, crc32c, contentType } of every object in a bucket. */
async function inventory(bucket) {
  const [files] = await bucket.getFiles()
  return new Map(
    files.map((f) => [
      f.name,
      {
        size: Number(f.metadata.size),
        md5Hash: f.metadata.md5Hash,
        crc32c: f.metadata.crc32c,
        contentType: f.metadata.contentType,
      },
    ]),
  )
}

/** Differences between the source and a copy (at most a few, for the message). */
function differences(source, copy) {
  const found = []
  for (const [name, want] of source) {
    const got = copy.get(name)
    if (!got) found.push(`${name}: missing`)
    else
      for (const key of ['size', 'md5Hash', 'crc32c', 'contentType'])
        if (got[key] !== want[key] || want[key] === undefined)
          found.push(`${name}: ${key} ${got[key]} != ${want[key]}`)
  }
  for (const name of copy.keys()) if (!source.has(name)) found.push(`${name}: not in the source`)
  return found
}

const round2 = (n) => Math.round(n * 100) / 100
let stopped = false
function stopEmulator() {
  if (stopped) return
  stopped = true
  try {
    emulator('stop')
  } catch (error) {
    console.error(`stopping the emulator: ${error.message}`)
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    stopEmulator()
    process.exit(130)
  })
}

let mismatches = 0
const started = Date.now()
const exports = emulator('start')
console.error(`gcs emulator on ${endpoint} in ${round2((Date.now() - started) / 1000)} s`)
try {
  const emulatorPid = Number(/GCS_EMULATOR_PID=(\d+)/.exec(exports)?.[1])
  const fbtVersion = JSON.parse(
    readFileSync(join(emulatorCache, 'npm/node_modules/firebase-tools/package.json'), 'utf8'),
  ).version
  const client = storage()
  const suffix = randomBytes(4).toString('hex')
  const [src] = await client.createBucket(`nvisy-bench-src-${suffix}`)

  // Seed: each object differs (its index in the first 4 bytes of each MiB).
  const seeded = Date.now()
  const block = Buffer.alloc(Math.max(objectBytes, MiB))
  for (let i = 0; i + 4 <= block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i)
  const names = Array.from(
    { length: objectCount },
    (_, i) => `objects/${String(i).padStart(5, '0')}.bin`,
  )
  let nextSeed = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (nextSeed < names.length) {
        const i = nextSeed++
        const body = Buffer.from(block.subarray(0, objectBytes))
        body.writeUInt32LE(i, 0)
        await src.file(names[i]).save(body, {
          resumable: false,
          contentType: 'application/octet-stream',
          metadata: { metadata: { bench: 'gcs', index: String(i) } },
        })
      }
    }),
  )
  if (largeBytes > 0) {
    async function* large() {
      for (let sent = 0; sent < largeBytes; sent += MiB) {
        const chunk = Buffer.from(block.subarray(0, Math.min(MiB, largeBytes - sent)))
        chunk.writeUInt32LE(sent / MiB, 0)
        yield chunk
      }
    }
    await pipe(
      Readable.from(large()),
      src.file('large.bin').createWriteStream({
        resumable: true,
        contentType: 'application/octet-stream',
        metadata: { metadata: { bench: 'gcs', index: 'large' } },
      }),
    )
  }
  const source = await inventory(src)
  if (source.size !== totalObjects) throw new Error(`seeded ${source.size} of ${totalObjects}`)
  console.error(
    `seeded ${objectCount} x ${objectBytes / KiB} KiB + ${largeBytes / MiB} MiB in ${round2((Date.now() - seeded) / 1000)} s`,
  )

  const runs = { bare: [], ours: [] }
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? ['bare', 'ours'] : ['ours', 'bare']) {
      const [dst] = await client.createBucket(`nvisy-bench-dst-${suffix}-${side}-${r}`)
      try {
        const emulatorBefore = emulatorCpuSeconds(emulatorPid)
        const measured = await runSide(side, src.name, dst.name)
        measured.emulatorCpuSeconds = emulatorCpuSeconds(emulatorPid) - emulatorBefore
        const problems = differences(source, await inventory(dst))
        if (measured.written !== totalObjects)
          problems.push(`wrote ${measured.written} of ${totalObjects} objects`)
        if (problems.length > 0) {
          mismatches++
          console.error(
            `${side} round ${r + 1}: copy differs:\n  ${problems.slice(0, 5).join('\n  ')}`,
          )
        }
        runs[side].push(measured)
        console.error(
          `${side} round ${r + 1}: ${round2(totalBytes / 1e6 / measured.seconds)} MB/s, ${measured.seconds} s, peak RSS ${measured.peakRssMiB} MiB, ${round2(measured.cpuSeconds)} s CPU (emulator ${round2(measured.emulatorCpuSeconds)} s)${problems.length ? '' : ', verified'}`,
        )
      } finally {
        await dst.deleteFiles({ force: true }).catch(() => {})
        await dst.delete().catch(() => {})
      }
    }
  }
  await src.deleteFiles({ force: true }).catch(() => {})
  await src.delete().catch(() => {})

  const best = (list) => list.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  const summary = (run) => ({
    mbPerSec: round2(totalBytes / 1e6 / run.seconds),
    objectsPerSec: round2(totalObjects / run.seconds),
    seconds: round2(run.seconds),
    peakRssMiB: run.peakRssMiB,
    cpuSeconds: round2(run.cpuSeconds),
    emulatorCpuSeconds: round2(run.emulatorCpuSeconds),
  })
  const bare = summary(best(runs.bare))
  const ours = summary(best(runs.ours))
  const report = {
    benchmark: 'gcs -> gcs copy, against the Firebase Storage emulator, not Cloud Storage',
    server: `firebase-tools ${fbtVersion} Cloud Storage emulator (scripts/services/gcs-emulator.sh) on ${endpoint}, same machine`,
    data: {
      objects: objectCount,
      objectKiB: objectBytes / KiB,
      largeMiB: largeBytes / MiB,
      totalMiB: round2(totalBytes / MiB),
    },
    settings: { concurrency, resumableThresholdMiB: resumableThreshold / MiB, rounds },
    node: process.version,
    verified: mismatches === 0,
    bare,
    ours,
    ratio: round2(ours.mbPerSec / bare.mbPerSec),
    peakRssOursOverBare: round2(ours.peakRssMiB / bare.peakRssMiB),
    notes:
      "Against the Firebase Storage emulator on the same machine, not Cloud Storage: the emulator shares the CPUs with both sides, so absolute MB/s are the emulator's, and the ratio is what to compare. " +
      'ratio = ours MB/s / bare MB/s (best round of each side). ours = executePipeline gcs source -> gcs sink, one object per batch, sink node concurrency ' +
      `${concurrency}; bare = getFiles + ${concurrency} workers piping createReadStream into createWriteStream (resumable above 8 MiB, as the provider). ` +
      'Bodies up to 8 MiB are read into memory (by the sink, just before it uploads each one, so a retry can resend them); the bare loop streams them.',
  }
  console.log(JSON.stringify(report, null, 2))
} finally {
  stopEmulator()
}
if (mismatches > 0) process.exitCode = 1
