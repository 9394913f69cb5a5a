#!/usr/bin/env node
// The `fs` provider (@nvisy/provider-fs) next to bare node:fs code, in the same run:
//
// 1. copy: a directory of blobs copied fs -> fs. Ours = the runtime (`executePipeline`,
//    apps/runtime/dist) with an `fs` blob source and an `fs` blob sink, batches of `--batch`
//    items, `--concurrency` blobs written at once (the provider's `writeConcurrency`),
//    `--sink-concurrency` batches in flight (default 1, the runtime's default). Baselines,
//    with `--concurrency` files in flight:
//    - bare: `fs.promises.copyFile` of each file (what `ratio` compares against);
//    - bareDurable: copyFile into a temporary file, fsync it, rename it over the target and
//      fsync the folder: the guarantees the provider's sink gives (`ratioToDurable`).
//    Data: `--files` files of `--file-kib` KiB under `small/` plus one `large.bin` of
//    `--large-mib` MiB, pseudo-random bytes. After each side the destination must hold
//    exactly the source's files (no other file, hidden ones included) with the same sizes
//    and sha256; it is then removed and `sync` is run, so no side pays for another's
//    writeback.
// 2. jsonl: a JSONL file of `--documents` JSON documents (~200 bytes) read as documents.
//    Ours = the provider's connection `read({ kind: 'document', file })`, each document
//    parsed; bare = node:readline over the same file and JSON.parse of each line
//    (`ratio`). oursRuntime = `executePipeline` from the same source into a sink that drops
//    batches of `--jsonl-batch` (`runtimeRatio`): the read as a pipeline runs it.
//
//   pnpm build
//   node bench/fs.bench.mjs [--files 4000] [--file-kib 64] [--large-mib 1024] [--concurrency 8]
//        [--batch 128] [--sink-concurrency 1] [--documents 1000000] [--jsonl-batch 1000]
//        [--only copy,jsonl] [--rounds 1]
//
// Every side runs in its own child process (peak RSS and CPU time are its own; modules are
// loaded before the clock starts). Data lives in a temporary directory under os.tmpdir(),
// removed at the end. `--rounds N` alternates which side goes first and keeps each side's
// best round. Prints one JSON object last on stdout: per side MB/s, files/s or documents/s,
// seconds, peak RSS MiB, CPU seconds; ratios are ours / baseline. Exits 1 when a copy
// differs from its source or a count does not match.
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import {
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createMeter, runJsonChild } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..')
const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '4000' },
    'file-kib': { type: 'string', default: '64' },
    'large-mib': { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '8' },
    batch: { type: 'string', default: '128' },
    'sink-concurrency': { type: 'string', default: '1' },
    documents: { type: 'string', default: '1000000' },
    'jsonl-batch': { type: 'string', default: '1000' },
    only: { type: 'string', default: 'copy,jsonl' },
    rounds: { type: 'string', default: '1' },
    // Child side only: which side, and the data directory.
    child: { type: 'string' },
    dir: { type: 'string' },
  },
})
const KiB = 1024
const MiB = 1024 * 1024
const fileCount = Number(args.files)
const fileBytes = Number(args['file-kib']) * KiB
const largeBytes = Number(args['large-mib']) * MiB
const concurrency = Math.max(1, Number(args.concurrency))
const batchItems = Math.max(1, Number(args.batch))
const sinkConcurrency = Math.max(1, Number(args['sink-concurrency']))
const documentCount = Number(args.documents)
const jsonlBatch = Math.max(1, Number(args['jsonl-batch']))
const rounds = Math.max(1, Number(args.rounds))
const blobCount = fileCount + (largeBytes > 0 ? 1 : 0)
const copyBytes = fileCount * fileBytes + largeBytes

const dist = (dir) => import(pathToFileURL(join(repoRoot, dir, 'dist', 'index.js')).href)
const round1 = (n) => Math.round(n * 10) / 10
const round2 = (n) => Math.round(n * 100) / 100

/** The document on line i: ~200 bytes of JSON with a string id. */
function documentLine(i) {
  return JSON.stringify({
    id: `doc-${String(i).padStart(8, '0')}`,
    type: 'order.created',
    customer: `customer-${i % 9973}`,
    amount: (i % 100000) / 100,
    currency: 'EUR',
    createdAt: '2025-01-01T00:00:00.000Z',
    tags: ['bench', 'jsonl'],
    note: 'padding to about two hundred bytes',
  })
}

/** Every regular file under `root` (hidden ones included), as sorted '/'-separated paths. */
async function listFiles(root, prefix = '') {
  const out = []
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) out.push(...(await listFiles(root, path)))
    else out.push(path)
  }
  return out.sort()
}

/** Run `work(item)` over `items`, `limit` at a time. */
async function eachConcurrent(items, limit, work) {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++])
    }),
  )
}

async function fsyncPath(path) {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

// ---------------------------------------------------------------- child: one side, measured
if (args.child) {
  const dir = args.dir
  const side = args.child
  // Load the modules before the clock starts: module loading is not what is compared.
  const runtime =
    side === 'copy-ours' || side === 'jsonl-ours-runtime' ? await dist('apps/runtime') : undefined
  const fs = side.includes('ours') ? await dist('packages/provider-fs') : undefined
  const core = side === 'jsonl-ours-runtime' ? await dist('packages/provider-core') : undefined
  const copying = side.startsWith('copy-')
  const source = join(dir, 'src')
  const target = join(dir, 'dst')
  if (copying) await mkdir(target)
  const meter = createMeter(
    copying
      ? { items: blobCount, unit: 'filesPerSec' }
      : { items: documentCount, unit: 'documentsPerSec' },
  )
  const signal = new AbortController().signal
  let count = 0

  /** Run a pipeline from `fs` node `from` to `sink` with these providers; returns the sink's item count. */
  async function pipeline(from, sink, providers) {
    const summary = await runtime.executePipeline({
      runId: `bench-fs-${randomBytes(4).toString('hex')}`,
      pipeline: {
        id: `bench-${side}`,
        nodes: [
          { id: 'source', role: 'source', provider: 'fs', ...from },
          { id: 'sink', role: 'sink', ...sink },
        ],
        edges: [{ from: 'source', to: 'sink' }],
        options: { failureBudget: 0 },
      },
      registry: new runtime.MapProviderRegistry(providers),
      resolveConnection: async (node) => ({
        credentials: node.connection.credentials ?? {},
        params: node.connection.params,
      }),
      checkpoints: new runtime.MemoryCheckpointStore(),
      onEvent: () => {},
      signal,
      resume: false,
    })
    if (summary.status !== 'completed')
      throw new Error(`pipeline ${summary.status}: ${JSON.stringify(summary.error ?? summary)}`)
    return summary.stats.nodes.sink.items
  }

  const bodies = {
    async 'copy-bare'() {
      const files = await listFiles(source)
      const folders = new Set(files.map((f) => dirname(f)).filter((d) => d !== '.'))
      for (const folder of folders) await mkdir(join(target, folder), { recursive: true })
      await eachConcurrent(files, concurrency, async (file) => {
        await copyFile(join(source, file), join(target, file))
        count++
      })
    },
    async 'copy-bare-durable'() {
      const files = await listFiles(source)
      const folders = new Set(files.map((f) => dirname(f)).filter((d) => d !== '.'))
      for (const folder of folders) await mkdir(join(target, folder), { recursive: true })
      await eachConcurrent(files, concurrency, async (file) => {
        const to = join(target, file)
        const temp = join(dirname(to), `.${randomBytes(8).toString('hex')}.tmp`)
        await copyFile(join(source, file), temp)
        await fsyncPath(temp)
        await rename(temp, to)
        await fsyncPath(dirname(to))
        count++
      })
    },
    async 'copy-ours'() {
      const provider = fs.createFsProvider({ writeConcurrency: concurrency })
      const connection = (root, readOnly) => ({ params: { root, readOnly }, credentials: {} })
      count = await pipeline(
        { connection: connection(source, true), stream: { kind: 'blob' } },
        {
          provider: 'fs',
          connection: connection(target, false),
          stream: { kind: 'blob' },
          batch: { maxItems: batchItems },
          concurrency: sinkConcurrency,
        },
        [provider],
      )
    },
    async 'jsonl-bare'() {
      const lines = createInterface({
        input: createReadStream(join(dir, 'documents.jsonl')),
        crlfDelay: Number.POSITIVE_INFINITY,
      })
      for await (const line of lines) {
        if (line.length === 0) continue
        const document = JSON.parse(line)
        if (typeof document.id !== 'string') throw new Error(`line ${count + 1} has no id`)
        count++
        if ((count & 0xffff) === 0) meter.sampleRss()
      }
    },
    async 'jsonl-ours'() {
      const connection = await fs.fsProvider.connect({
        credentials: {},
        params: { root: dir, readOnly: true },
      })
      for await (const { data } of connection.read(
        { kind: 'document', file: 'documents.jsonl' },
        { signal },
      )) {
        if (typeof data.id !== 'string') throw new Error(`document ${count + 1} has no id`)
        count++
        if ((count & 0xffff) === 0) meter.sampleRss()
      }
      await connection.close()
    },
    async 'jsonl-ours-runtime'() {
      // A sink that drops what it gets: what remains is the read and the pipeline around it.
      const nullProvider = core.defineProvider({
        id: 'null',
        version: '0.0.0',
        specificationVersion: core.SPECIFICATION_VERSION,
        credentials: core.EmptyObject,
        params: core.EmptyObject,
        sink: { data: ['document'], stream: core.EmptyObject, idempotentBy: 'nothing is kept' },
        async connect() {
          return {
            async check() {},
            async write(_stream, batch) {
              return { written: batch.length, failed: [] }
            },
            async close() {},
          }
        },
      })
      count = await pipeline(
        {
          connection: { params: { root: dir, readOnly: true }, credentials: {} },
          stream: { kind: 'document', file: 'documents.jsonl' },
        },
        {
          provider: 'null',
          connection: { params: {}, credentials: {} },
          stream: {},
          batch: { maxItems: jsonlBatch },
        },
        [fs.fsProvider, nullProvider],
      )
    },
  }
  if (!bodies[side]) throw new Error(`unknown side ${side}`)
  const cpuBefore = process.cpuUsage()
  const measured = await meter.measure(side, bodies[side])
  const cpu = process.cpuUsage(cpuBefore)
  process.stdout.write(
    JSON.stringify({ ...measured, count, cpuSeconds: (cpu.user + cpu.system) / 1e6 }),
  )
  process.exit(0)
}

// ---------------------------------------------------------------- parent
function runSide(side, dir) {
  return runJsonChild(
    fileURLToPath(import.meta.url),
    ['--child', side, '--dir', dir, ...process.argv.slice(2)],
    { name: side, nodeArgs: ['--expose-gc'] },
  )
}

const sha256 = (buffer) => createHash('sha256').update(buffer).digest('hex')

async function sha256File(path) {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk)
  return hash.digest('hex')
}

/** Write the blobs under `root`; returns path -> { size, sha256 }. */
async function writeBlobs(root) {
  const expected = new Map()
  await mkdir(join(root, 'small'), { recursive: true })
  const width = String(fileCount).length
  for (let i = 0; i < fileCount; i++) {
    const path = `small/f-${String(i).padStart(width, '0')}.bin`
    const bytes = randomBytes(fileBytes)
    await writeFile(join(root, path), bytes)
    expected.set(path, { size: fileBytes, sha256: sha256(bytes) })
  }
  if (largeBytes > 0) {
    const hash = createHash('sha256')
    const handle = await open(join(root, 'large.bin'), 'w')
    try {
      for (let left = largeBytes; left > 0; left -= 8 * MiB) {
        const chunk = randomBytes(Math.min(8 * MiB, left))
        hash.update(chunk)
        await handle.write(chunk)
      }
    } finally {
      await handle.close()
    }
    expected.set('large.bin', { size: largeBytes, sha256: hash.digest('hex') })
  }
  return expected
}

/** Problems of the copy under `root` against `expected` (empty when it is exact). */
async function verifyCopy(root, expected) {
  const problems = []
  const found = new Set(await listFiles(root))
  for (const path of found) if (!expected.has(path)) problems.push(`unexpected file ${path}`)
  for (const [path, want] of expected) {
    if (!found.has(path)) {
      problems.push(`missing ${path}`)
      continue
    }
    const { size } = await stat(join(root, path))
    if (size !== want.size) {
      problems.push(`${path}: ${size} bytes, not ${want.size}`)
      continue
    }
    const got = await sha256File(join(root, path))
    if (got !== want.sha256) problems.push(`${path}: sha256 differs`)
  }
  return problems
}

async function writeJsonl(file) {
  const out = createWriteStream(file)
  let chunk = ''
  for (let i = 0; i < documentCount; i++) {
    chunk += `${documentLine(i)}\n`
    if (chunk.length > MiB) {
      if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve))
      chunk = ''
    }
  }
  out.end(chunk)
  await new Promise((resolve, reject) => {
    out.once('finish', resolve)
    out.once('error', reject)
  })
}

/** Flush dirty pages, so one side's writeback does not run during the next side. */
const syncDisks = () => execFileSync('sync')

/** Run `sides` for `rounds` rounds (alternating the order); returns each side's best run. */
async function measureSides(sides, dir, check) {
  const runs = Object.fromEntries(sides.map((side) => [side, []]))
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      syncDisks()
      const measured = await runSide(side, dir)
      await check(side, measured)
      runs[side].push(measured)
      console.error(`round ${r + 1} ${side}: ${JSON.stringify(measured)}`)
    }
  }
  return Object.fromEntries(
    sides.map((side) => [side, runs[side].reduce((a, b) => (b.seconds < a.seconds ? b : a))]),
  )
}

const selected = args.only.split(',').filter(Boolean)
for (const name of selected)
  if (name !== 'copy' && name !== 'jsonl') throw new Error(`unknown part ${name}`)

const dir = await mkdtemp(join(tmpdir(), 'nvisy-bench-fs-'))
let failures = 0
try {
  const report = {
    benchmark: 'fs provider: blob copy fs -> fs, JSONL documents read',
    node: process.version,
    rounds,
  }

  if (selected.includes('copy')) {
    let started = performance.now()
    const expected = await writeBlobs(join(dir, 'src'))
    console.error(
      `generated ${fileCount} x ${fileBytes / KiB} KiB + ${largeBytes / MiB} MiB in ${round2((performance.now() - started) / 1000)} s`,
    )
    const sides = ['copy-bare', 'copy-bare-durable', 'copy-ours']
    const best = await measureSides(sides, dir, async (side, measured) => {
      started = performance.now()
      const problems = await verifyCopy(join(dir, 'dst'), expected)
      if (measured.count !== blobCount) problems.push(`copied ${measured.count} of ${blobCount}`)
      if (problems.length > 0) {
        failures++
        console.error(
          `${side}: the copy differs from the source:\n  ${problems.slice(0, 20).join('\n  ')}`,
        )
      } else
        console.error(`${side}: copy verified in ${round2((performance.now() - started) / 1000)} s`)
      await rm(join(dir, 'dst'), { recursive: true, force: true })
    })
    const summary = (run) => ({
      mbPerSec: round1(copyBytes / 1e6 / run.seconds),
      filesPerSec: run.filesPerSec,
      seconds: round2(run.seconds),
      peakRssMiB: run.peakRssMiB,
      cpuSeconds: round2(run.cpuSeconds),
    })
    const bare = summary(best['copy-bare'])
    const bareDurable = summary(best['copy-bare-durable'])
    const ours = summary(best['copy-ours'])
    report.copy = {
      data: {
        files: fileCount,
        fileKiB: fileBytes / KiB,
        largeMiB: largeBytes / MiB,
        totalMiB: round1(copyBytes / MiB),
      },
      settings: { concurrency, batchMaxItems: batchItems, sinkConcurrency },
      bare,
      bareDurable,
      ours,
      ratio: round2(ours.mbPerSec / bare.mbPerSec),
      ratioToDurable: round2(ours.mbPerSec / bareDurable.mbPerSec),
      peakRssOursOverBare: round2(ours.peakRssMiB / bare.peakRssMiB),
    }
    await rm(join(dir, 'src'), { recursive: true, force: true })
  }

  if (selected.includes('jsonl')) {
    const file = join(dir, 'documents.jsonl')
    const started = performance.now()
    await writeJsonl(file)
    const { size } = await stat(file)
    console.error(
      `generated ${documentCount} documents (${round1(size / documentCount)} bytes/line) in ${round2((performance.now() - started) / 1000)} s`,
    )
    const sides = ['jsonl-bare', 'jsonl-ours', 'jsonl-ours-runtime']
    const best = await measureSides(sides, dir, async (side, measured) => {
      if (measured.count !== documentCount) {
        failures++
        console.error(`${side}: read ${measured.count} documents, expected ${documentCount}`)
      }
    })
    const summary = (run) => ({
      documentsPerSec: run.documentsPerSec,
      mbPerSec: round1(size / 1e6 / run.seconds),
      seconds: round2(run.seconds),
      peakRssMiB: run.peakRssMiB,
      cpuSeconds: round2(run.cpuSeconds),
    })
    const bare = summary(best['jsonl-bare'])
    const ours = summary(best['jsonl-ours'])
    const oursRuntime = summary(best['jsonl-ours-runtime'])
    report.jsonl = {
      data: {
        documents: documentCount,
        fileMiB: round1(size / MiB),
        bytesPerLine: round1(size / documentCount),
      },
      settings: { runtimeBatchMaxItems: jsonlBatch },
      bare,
      ours,
      oursRuntime,
      ratio: round2(ours.documentsPerSec / bare.documentsPerSec),
      runtimeRatio: round2(oursRuntime.documentsPerSec / bare.documentsPerSec),
      peakRssOursOverBare: round2(ours.peakRssMiB / bare.peakRssMiB),
    }
  }

  report.notes =
    'Best round per side; ratio = ours / baseline throughput, measured in the same run. ' +
    'copy: ours = executePipeline fs blob source -> fs blob sink (each blob streamed into a temporary file, fsynced, renamed, folder fsynced; bodies up to 8 MiB are read into memory by the sink, each just before its write); ' +
    'bare = fs.promises.copyFile (no fsync, so the data may still be in the page cache when the clock stops); bareDurable = copyFile to a temporary file + fsync + rename + folder fsync, the guarantees the sink gives. ' +
    'jsonl: ours = fs provider connection.read of a document stream; oursRuntime = the same read in executePipeline into a sink that drops the batches; bare = node:readline + JSON.parse.'
  console.log(JSON.stringify(report, null, 2))
} finally {
  await rm(dir, { recursive: true, force: true })
}
if (failures > 0) process.exitCode = 1
