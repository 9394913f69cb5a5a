#!/usr/bin/env node
// Peer comparison: S3 -> S3 bucket copy through the Nvisy runtime (the `nvisy` CLI running a
// pipeline with @nvisy/provider-s3 as source and sink) next to rclone (Debian package), on the
// same objects in the same run, on a dedicated local Ceph RADOS Gateway started for the
// benchmark (scripts/services/s3-server.sh on port 7491) and stopped at the end. Two modes:
//   stream: `rclone copy --disable Copy` against our sink with `serverSideCopy: false`: every
//           byte goes through the client on both sides.
//   copy:   rclone's default (server-side copy: CopyObject inside the server) against ours
//           (the same endpoint and credentials on both nodes, so the runtime copies
//           server-side: CopyObject, UploadPartCopy above the sink's copyCutoffBytes).
//
//   pnpm build && node bench/peers-rclone.bench.mjs [--objects-mib 1024] [--large-mib 1024]
//     [--transfers 4] [--rounds 1] [--mode both|stream|copy]
//
// Data: objects-mib / 8 objects of 8 MiB plus one object of large-mib MiB (multipart).
// Both sides: `transfers` objects in flight, 8 MiB parts, 4 parts in flight per object.
// Each side runs as its own process under `/usr/bin/time -v` (peak RSS, CPU time); rclone
// and time are installed with apt-get when missing and running as root. After each copy the
// destination is checked against the source: same keys, sizes and ETags (single-part ETags
// are MD5s; multipart ETags match because both sides use the same part size when streaming,
// and a server-side CopyObject keeps the source's ETag on RGW).
// Prints one JSON object last on stdout: MB/s, peak RSS and CPU per side, ratio = ours /
// rclone by MB/s and cpuRatio = ours / rclone by CPU seconds (stream mode; medians over
// rounds), and the same under serverSideCopy (copy mode). CPU seconds include each process's
// start-up (about 0.9 s for `nvisy run`, little for rclone), which weighs on small runs.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensurePackages, hasCommand, median, timedCommand } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const { values: args } = parseArgs({
  options: {
    'objects-mib': { type: 'string', default: '1024' },
    'large-mib': { type: 'string', default: '1024' },
    transfers: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1' },
    mode: { type: 'string', default: 'both' },
  },
})
if (!['both', 'stream', 'copy'].includes(args.mode))
  throw new Error(`--mode must be both, stream or copy (got ${JSON.stringify(args.mode)})`)
const MODES = args.mode === 'both' ? ['stream', 'copy'] : [args.mode]
const MiB = 1024 * 1024
const objectsMiB = Number(args['objects-mib'])
const largeMiB = Number(args['large-mib'])
const transfers = Number(args.transfers)
const ROUNDS = Math.max(1, Number(args.rounds))
const PART_MIB = 8
const PART_CONCURRENCY = 4
if (largeMiB % PART_MIB !== 0) throw new Error(`--large-mib must be a multiple of ${PART_MIB}`)
const objectCount = Math.floor(objectsMiB / 8)
const totalBytes = objectCount * 8 * MiB + largeMiB * MiB
const log = (message) => process.stderr.write(`peers-rclone: ${message}\n`)
const round = (n, d) => Math.round(n * 10 ** d) / 10 ** d

const port = 7491
const endpoint = `http://127.0.0.1:${port}`
const accessKeyId = 'AKIALOCALS3TEST00001'
const secretAccessKey = 'localS3testSecretKey0000000000000000001'
const serverEnv = {
  ...process.env,
  S3_SERVER_PORT: String(port),
  S3_SERVER_MON_PORT: '3311',
  S3_SERVER_DIR: '/tmp/nvisy-bench-rclone',
  S3_SERVER_ACCESS_KEY: accessKeyId,
  S3_SERVER_SECRET_KEY: secretAccessKey,
  // memstore keeps objects in RAM and the gateway frees deleted data only when its garbage
  // collector runs (forced after each copy, below): room for the source and two copies.
  // When memstore fills up, the gateway stalls requests rather than failing them.
  S3_SERVER_MEM_BYTES: String((3 * (objectsMiB + largeMiB) + 1024) * MiB),
}
const work = join(os.tmpdir(), `nvisy-peers-rclone-${randomBytes(4).toString('hex')}`)

// ---- tools --------------------------------------------------------------------------------
ensurePackages(
  [
    { package: 'rclone', present: () => hasCommand('rclone') },
    { package: 'time', present: () => existsSync('/usr/bin/time') },
  ],
  log,
)
const cli = join(root, 'apps/runtime/dist/cli.js')
for (const file of [cli, join(root, 'packages/provider-s3/dist/index.js')])
  if (!existsSync(file)) throw new Error(`${file} is missing: run pnpm build first`)

// Both sides get the same environment, without AWS_CA_BUNDLE: rclone fails at once when it
// is set (it points at a bundle meant for the outside world; the endpoint here is plain http).
const sideEnv = { ...process.env }
delete sideEnv.AWS_CA_BUNDLE

// ---- S3 client for seeding and checking (the SDK the provider already depends on) --------
const packageRequire = createRequire(join(root, 'packages/provider-s3/package.json'))
const {
  S3Client,
  PutObjectCommand,
  CreateBucketCommand,
  ListObjectsV2Command,
  DeleteObjectsCommand,
} = packageRequire('@aws-sdk/client-s3')
const { Upload } = packageRequire('@aws-sdk/lib-storage')
const s3 = new S3Client({
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
})

async function listAll(bucket) {
  const out = []
  let token
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    )
    for (const o of page.Contents ?? []) out.push({ key: o.Key, size: o.Size, etag: o.ETag })
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return out
}

async function emptyDestination() {
  const objects = await listAll('bench-dst')
  for (let i = 0; i < objects.length; i += 1000) {
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'bench-dst',
        Delete: { Objects: objects.slice(i, i + 1000).map((o) => ({ Key: o.key })) },
      }),
    )
  }
  // Deleted objects' data stays in the store until RGW's garbage collector runs (hours by
  // default): run it now so memstore gets the space back before the next copy.
  execFileSync('radosgw-admin', ['gc', 'process', '--include-all'], {
    env: { ...serverEnv, CEPH_CONF: join(serverEnv.S3_SERVER_DIR, 'ceph.conf') },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}

async function seed() {
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-src' }))
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-dst' }))
  const block = Buffer.alloc(8 * MiB)
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i)
  for (let i = 0; i < objectCount; i++) {
    block.writeUInt32LE(i, 0) // each object differs
    await s3.send(
      new PutObjectCommand({
        Bucket: 'bench-src',
        Key: `objects/${String(i).padStart(5, '0')}.bin`,
        Body: block,
        ContentType: 'application/octet-stream',
      }),
    )
  }
  if (largeMiB > 0) {
    async function* large() {
      for (let i = 0; i < largeMiB / 8; i++) {
        const part = Buffer.from(block)
        part.writeUInt32LE(0x10000 + i, 0)
        yield part
      }
    }
    await new Upload({
      client: s3,
      params: { Bucket: 'bench-src', Key: 'large.bin', Body: Readable.from(large()) },
      partSize: PART_MIB * MiB,
    }).done()
  }
}

async function verify(name, source) {
  const copied = await listAll('bench-dst')
  if (copied.length !== source.length)
    throw new Error(`${name}: copied ${copied.length} of ${source.length} objects`)
  for (const [i, object] of copied.entries()) {
    const want = source[i]
    if (object.key !== want.key || object.size !== want.size || object.etag !== want.etag)
      throw new Error(
        `${name}: ${object.key} (${object.size} B, ETag ${object.etag}) differs from ${want.key} (${want.size} B, ETag ${want.etag})`,
      )
  }
}

// ---- one side under /usr/bin/time -v -----------------------------------------------------
function timed(name, command, commandArgs, env) {
  return timedCommand(name, command, commandArgs, { env, cwd: work })
}

function runRclone(mode) {
  // One remote configured through the environment. In stream mode --disable Copy turns off
  // server-side copy, so rclone downloads and uploads every byte like the runtime does; in copy
  // mode rclone does what it does by default between two buckets of one remote: CopyObject.
  const env = {
    ...sideEnv,
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Ceph',
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: secretAccessKey,
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  }
  const common = [
    'copy',
    'bench:bench-src',
    'bench:bench-dst',
    '--transfers',
    String(transfers),
    '--s3-no-check-bucket',
    '--config',
    '/dev/null',
    '--stats',
    '0',
  ]
  const streamed = [
    '--disable',
    'Copy',
    '--s3-chunk-size',
    `${PART_MIB}M`,
    '--s3-upload-concurrency',
    String(PART_CONCURRENCY),
    // Multipart above one part (KiB granularity: rclone 1.60 misreads a byte count), as
    // lib-storage does; rclone's default cutoff is 200 MiB. The same part layout gives the
    // same multipart ETags.
    '--s3-upload-cutoff',
    `${PART_MIB * 1024 + 1}k`,
  ]
  return timed('rclone', 'rclone', mode === 'stream' ? [...common, ...streamed] : common, env)
}

function runOurs(mode) {
  return timed(
    'ours',
    process.execPath,
    [
      // Node flags for our side alone, e.g. NVISY_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'
      ...(process.env.NVISY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      cli,
      'run',
      join(work, `pipeline-${mode}.json`),
      '--no-resume',
      '--checkpoints',
      'checkpoints.json',
    ],
    { ...sideEnv, NVISY_BENCH_S3_SECRET: secretAccessKey },
  )
}

// The runtime finds provider packages by name from the config file's directory, as an
// installation would have them: a node_modules link to the built workspace package.
function writeRuntimeFiles() {
  mkdirSync(join(work, 'node_modules/@nvisy'), { recursive: true })
  symlinkSync(join(root, 'packages/provider-s3'), join(work, 'node_modules/@nvisy/provider-s3'))
  writeFileSync(
    join(work, 'nvisy.config.json'),
    JSON.stringify({ providers: ['@nvisy/provider-s3'] }),
  )
  const connection = (bucket) => ({
    params: { bucket, endpoint },
    credentials: { accessKeyId, secretAccessKey: { $env: 'NVISY_BENCH_S3_SECRET' } },
  })
  // Both nodes on one endpoint with the same credentials: the runtime copies server-side
  // unless the sink says serverSideCopy: false (stream mode).
  const pipeline = (mode) => ({
    id: `peers-s3-to-s3-${mode}`,
    nodes: [
      {
        id: 'src',
        role: 'source',
        provider: 's3',
        connection: connection('bench-src'),
        // A server-side copy keeps content type and metadata as the server holds them
        // (MetadataDirective COPY, like rclone's): no HEAD per object is needed for it.
        stream: mode === 'copy' ? { metadata: false } : {},
      },
      {
        id: 'dst',
        role: 'sink',
        provider: 's3',
        connection: connection('bench-dst'),
        // `transfers` objects in flight, like rclone: one object per batch, `transfers`
        // batches written at once.
        stream: {
          concurrency: 1,
          partSizeBytes: PART_MIB * MiB,
          partConcurrency: PART_CONCURRENCY,
          ...(mode === 'stream' ? { serverSideCopy: false } : {}),
        },
        batch: { maxItems: 1 },
        concurrency: transfers,
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
  })
  for (const mode of MODES)
    writeFileSync(join(work, `pipeline-${mode}.json`), JSON.stringify(pipeline(mode), null, 2))
}

// ---- run ----------------------------------------------------------------------------------
const serverScript = join(root, 'scripts/services/s3-server.sh')
mkdirSync(work, { recursive: true })
let failed = false
try {
  let t = Date.now()
  execFileSync('bash', [serverScript, 'start'], {
    env: serverEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  log(`Ceph RGW on ${endpoint} up in ${((Date.now() - t) / 1000).toFixed(1)}s`)
  t = Date.now()
  await seed()
  const source = await listAll('bench-src')
  log(
    `seeded ${source.length} objects, ${Math.round(totalBytes / MiB)} MiB in ${((Date.now() - t) / 1000).toFixed(1)}s`,
  )
  writeRuntimeFiles()

  // Each mode: ROUNDS rounds of both sides (alternating who goes first), the median ratio,
  // and the sides from the round closest to it.
  const compare = async (mode) => {
    const rounds = []
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ['rclone', 'ours'] : ['ours', 'rclone']
      const measured = {}
      for (const name of order) {
        await emptyDestination()
        const result = name === 'rclone' ? await runRclone(mode) : await runOurs(mode)
        await verify(`${mode} ${name}`, source)
        measured[name] = {
          seconds: round(result.seconds, 2),
          mbPerSecond: round(totalBytes / 1e6 / result.seconds, 1),
          peakRssMB: Math.round(result.peakRssKb / 1024),
          cpuSeconds: round(result.cpuSeconds, 2),
        }
        log(`${mode} round ${r + 1} ${name}: ${JSON.stringify(measured[name])} (copy verified)`)
      }
      measured.ratio = round(measured.ours.mbPerSecond / measured.rclone.mbPerSecond, 3)
      // time(1) reports CPU in hundredths of a second: a copy-mode rclone run may show 0.
      measured.cpuRatio =
        measured.rclone.cpuSeconds > 0
          ? round(measured.ours.cpuSeconds / measured.rclone.cpuSeconds, 3)
          : undefined
      rounds.push(measured)
    }
    const ratio = round(median(rounds.map((m) => m.ratio)), 3)
    const cpuRatios = rounds.map((m) => m.cpuRatio).filter((r) => r !== undefined)
    const cpuRatio = cpuRatios.length > 0 ? round(median(cpuRatios), 3) : undefined
    const chosen = rounds.reduce((a, b) =>
      Math.abs(b.ratio - ratio) < Math.abs(a.ratio - ratio) ? b : a,
    )
    log(
      `${mode}: ours ${chosen.ours.mbPerSecond} MB/s (${chosen.ours.peakRssMB} MB, ${chosen.ours.cpuSeconds} s CPU), rclone ${chosen.rclone.mbPerSecond} MB/s (${chosen.rclone.peakRssMB} MB, ${chosen.rclone.cpuSeconds} s CPU): ratio ${ratio}, CPU ratio ${cpuRatio}`,
    )
    return {
      ours: chosen.ours,
      rclone: chosen.rclone,
      ratio,
      cpuRatio,
      rounds: ROUNDS > 1 ? rounds : undefined,
    }
  }
  const results = {}
  for (const mode of MODES) results[mode] = await compare(mode)
  await emptyDestination()
  const rcloneVersion = execFileSync('rclone', ['version'], { env: sideEnv, encoding: 'utf8' })
    .split('\n')[0]
    .trim()
  const report = {
    benchmark: 's3-to-s3 copy: nvisy runtime vs rclone (local Ceph RGW, memstore)',
    data: {
      objects: objectCount,
      objectMiB: 8,
      largeMiB,
      totalMiB: Math.round(totalBytes / MiB),
      verified: 'keys, sizes and ETags equal to the source',
    },
    settings: {
      transfers,
      partSizeMiB: PART_MIB,
      partConcurrency: PART_CONCURRENCY,
      rclone: `${rcloneVersion}: copy --disable Copy --transfers ${transfers} --s3-chunk-size ${PART_MIB}M --s3-upload-concurrency ${PART_CONCURRENCY} --s3-upload-cutoff ${PART_MIB * 1024 + 1}k`,
      ours: `nvisy run: s3 source -> s3 sink (serverSideCopy: false), batches of 1 object, sink concurrency ${transfers}`,
      rcloneServerSideCopy: `${rcloneVersion}: copy --transfers ${transfers} (server-side copy, its default)`,
      oursServerSideCopy: `nvisy run: s3 source (metadata: false) -> s3 sink on one endpoint with the same credentials (server-side copy), batches of 1 object, sink concurrency ${transfers}`,
    },
    loadAverage: os.loadavg().map((l) => round(l, 1)),
    // Every byte through the client (rclone --disable Copy).
    ...(results.stream ?? {}),
    // Copies inside the server on both sides (rclone's default).
    serverSideCopy: results.copy,
  }
  console.log(JSON.stringify(report))
} catch (error) {
  failed = true
  log(`FAILED: ${error.message}`)
} finally {
  s3.destroy()
  try {
    execFileSync('bash', [serverScript, 'stop'], {
      env: serverEnv,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  } catch (error) {
    log(`stopping the S3 server: ${error.message}`)
  }
  rmSync(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
