// `nvisy serve` as a deployment runs it: the built CLI in its own process, joining a NATS
// server that requires a user and password (a dedicated nats-server with JetStream started
// here), with its subjects, events stream, bucket and queue group named by flags.
// - wrong NATS credentials: a clear start-up error, exit 1, the password in no output;
// - SIGTERM mid-run: no new requests, the run stops at a batch boundary with a `cancelled`
//   event and its checkpoint in KV, the process exits 0; a restarted instance resumes the
//   same pipeline from that checkpoint and the sink ends equal to the source.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCurve } from '@nats-io/nkeys'
import type { Pipeline, RunEvent } from '@nvisy/protocol'
import { freePort, serviceSkipReason } from '@nvisy/provider-testkit'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildRuntimeDist,
  PG,
  postgresSkip,
  ServerClient,
  TABLE_DIGEST,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const runtimeDir = join(here, '..', '..')
const repoRoot = join(runtimeDir, '..', '..')
const CLI = join(runtimeDir, 'dist', 'cli.js')
const CONFIG = join(here, '__fixtures__', 'nvisy.config.json')
const NATS_SERVER = process.env.NVISY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server'
const ROWS = 3000
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_serve_${suffix}`
const naming = uniqueNaming('serve')
const NATS_USER = 'nvisy-runtime'
const NATS_PASSWORD = `pw-${randomBytes(12).toString('hex')}`
const decoder = new TextDecoder()

// With NVISY_REQUIRE_SERVICES=1 (CI) a missing binary fails instead of skipping.
const skip =
  (await postgresSkip()) ||
  (await serviceSkipReason('nats-server (the binary)', NATS_SERVER, async () =>
    existsSync(NATS_SERVER),
  ))

interface Serve {
  child: ChildProcess
  stderr(): string
  stdout(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function serve(args: string[], env: NodeJS.ProcessEnv): Serve {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', CONFIG, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, stderr: () => err, stdout: () => out, exited }
}

async function waitForLog(run: Serve, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!run.stderr().includes(text)) {
    if (run.child.exitCode !== null)
      throw new Error(`nvisy serve exited ${run.child.exitCode} before "${text}":\n${run.stderr()}`)
    if (Date.now() > deadline)
      throw new Error(`no "${text}" from nvisy serve in ${timeoutMs} ms:\n${run.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe.skipIf(skip)('nvisy serve: NATS authentication and SIGTERM drain', () => {
  let natsDir: string
  let nats: ChildProcess | undefined
  let natsUrl: string
  let db: pg.Pool
  let server: ServerClient
  const running: Serve[] = []
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const pgParams = { host: PG.host, port: PG.port, database: PG.database, schema }

  function serveArgs(): string[] {
    return [
      '--server-key',
      server.publicKey,
      '--subject-prefix',
      naming.prefix,
      '--events-stream',
      naming.eventsStream,
      '--checkpoint-bucket',
      naming.checkpointBucket,
      '--queue-group',
      naming.queueGroup,
      '--log-level',
      'info',
    ]
  }

  function startServe(env: NodeJS.ProcessEnv = {}, extra: string[] = []): Serve {
    const run = serve([...serveArgs(), ...extra], {
      NVISY_NATS_URL: natsUrl,
      NVISY_NATS_USER: NATS_USER,
      NVISY_NATS_PASSWORD: NATS_PASSWORD,
      NVISY_RUNTIME_SEED: runtimeSeed,
      ...env,
    })
    running.push(run)
    return run
  }

  function copy(runPipelineId: string, maxItems: number): Pipeline {
    const node = (id: string, role: 'source' | 'sink', stream: Record<string, unknown>) => ({
      id,
      role,
      provider: 'postgres',
      connection: { params: pgParams, sealedCredentials: server.seal({ user: PG.user }) },
      stream,
    })
    return {
      id: runPipelineId,
      nodes: [
        node('src', 'source', { table: 'source', pageSize: 200 }),
        { ...node('dst', 'sink', { table: 'target', mode: 'upsert' }), batch: { maxItems } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 100, checkpointEverySeconds: 0.2 },
    }
  }

  beforeAll(async () => {
    await buildRuntimeDist()

    natsDir = await mkdtemp(join(tmpdir(), 'nvisy-serve-nats-'))
    const port = await freePort()
    natsUrl = `nats://127.0.0.1:${port}`
    // Users and passwords need a config file (the -user/-pass flags allow one user only and
    // put the password on the command line).
    const conf = join(natsDir, 'nats.conf')
    await writeFile(
      conf,
      `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${join(natsDir, 'js')}" }\n` +
        `authorization { users: [ { user: "${NATS_USER}", password: "${NATS_PASSWORD}" } ] }\n`,
    )
    nats = spawn(NATS_SERVER, ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] })
    const deadline = Date.now() + 15_000
    while (true) {
      try {
        server = await ServerClient.connect(naming, {
          servers: natsUrl,
          user: NATS_USER,
          pass: NATS_PASSWORD,
        })
        break
      } catch (error) {
        if (Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }

    db = new pg.Pool({ ...PG, max: 2 })
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(`
      CREATE TABLE ${schema}.source (id bigint PRIMARY KEY, name text NOT NULL, doc jsonb)`)
    await db.query(
      `INSERT INTO ${schema}.source SELECT g, md5(g::text), jsonb_build_object('g', g)
       FROM generate_series(1, $1::int) g`,
      [ROWS],
    )
    await db.query(`CREATE TABLE ${schema}.target (LIKE ${schema}.source INCLUDING ALL)`)
    // Every insert statement into the target naps, so SIGTERM lands mid-run.
    await db.query(`
      CREATE FUNCTION ${schema}.nap() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$`)
    await db.query(`
      CREATE TRIGGER nap BEFORE INSERT ON ${schema}.target
      FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.nap()`)
  }, 300_000)

  afterAll(async () => {
    for (const run of running)
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
    await server?.cleanup().catch(() => {})
    nats?.kill('SIGTERM')
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await db.end()
    }
    if (natsDir) await rm(natsDir, { recursive: true, force: true })
  })

  it('refuses to start with a wrong NATS password: exit 1, an auth message, no password in the output', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`
    const run = startServe({ NVISY_NATS_PASSWORD: wrong })
    const { code } = await run.exited
    expect(code).toBe(1)
    expect(run.stderr()).toContain(`cannot join NATS at ${natsUrl}`)
    expect(run.stderr()).toContain("refused the runtime's credentials")
    expect(run.stderr() + run.stdout()).not.toContain(wrong)
    expect(run.stderr() + run.stdout()).not.toContain(NATS_PASSWORD)
  })

  it('refuses an invalid subject prefix before connecting, naming the flag', async () => {
    const run = startServe({}, ['--subject-prefix', 'nvisy.>'])
    const { code } = await run.exited
    expect(code).toBe(2)
    expect(run.stderr()).toContain('--subject-prefix')
    expect(run.stderr()).toContain('"nvisy.>"')
  })

  it('drains on SIGTERM: the run stops with a checkpoint, the process exits 0, a new instance resumes it exactly', async () => {
    const first = startServe()
    await waitForLog(first, '"serving"')
    const catalog = await server.catalog()
    expect(catalog.providers.map((p: { id: string }) => p.id)).toContain('postgres')
    expect(catalog.runtime.publicKey).toMatch(/^X/)

    const pipelineId = `serve-${suffix}`
    const runA = `serve-a-${suffix}`
    await server.startRun(runA, copy(pipelineId, 10))
    const seen = await server.runEvents(runA, {
      until: (e) => e.type === 'checkpoint' && Number((e.context as any).cursor[0]) >= 300,
      timeoutMs: 60_000,
    })
    expect(seen.at(-1)?.type, 'the run was still going').toBe('checkpoint')

    first.child.kill('SIGTERM')
    const { code, signal } = await first.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(first.stderr()).toContain('"drained"')

    // Nobody serves now: a new request finds no responder (the server sends it elsewhere).
    await expect(
      server.nc.request(server.subjects.providers, new TextEncoder().encode('{}'), {
        timeout: 2000,
      }),
    ).rejects.toThrow()

    const events = await server.runEvents(runA, { timeoutMs: 30_000 })
    const end = terminal(events) as Extract<RunEvent, { type: 'cancelled' }>
    expect(end.type).toBe('cancelled')
    expect(end.reason).toBe('draining')
    const stored = await server.checkpoint(pipelineId, 'src')
    expect(stored?.runId).toBe(runA)
    expect(stored?.context).toEqual(end.checkpoints?.src)
    const at = Number((stored!.context as any).cursor[0])
    expect(at).toBeGreaterThanOrEqual(300)
    expect(at, 'SIGTERM landed before the end').toBeLessThan(ROWS)
    // The checkpoint never runs ahead of the sink.
    const upTo = await db.query(`SELECT count(*)::int AS n FROM ${schema}.target WHERE id <= $1`, [
      at,
    ])
    expect(upTo.rows[0].n).toBe(at)

    // A new instance picks the pipeline up where the drained one stopped.
    const second = startServe()
    await waitForLog(second, '"serving"')
    // A write may have committed (with the sink's offset) after the checkpoint was saved: the
    // resumed run starts at the sink's offset and reads exactly the rows the target lacks.
    const before = await db.query(`SELECT count(*)::int AS n FROM ${schema}.target`)
    const held = before.rows[0].n as number
    expect(held).toBeGreaterThanOrEqual(at)
    const runB = `serve-b-${suffix}`
    await server.startRun(runB, copy(pipelineId, 500))
    const done = terminal(await server.runEvents(runB, { timeoutMs: 90_000 }))
    expect(done, JSON.stringify(done)).toMatchObject({
      type: 'completed',
      stats: { nodes: { src: { items: ROWS - held }, dst: { items: ROWS - held, failed: 0 } } },
    })
    const source = await db.query(TABLE_DIGEST(`${schema}.source`))
    const target = await db.query(TABLE_DIGEST(`${schema}.target`))
    expect(target.rows[0]).toEqual(source.rows[0])

    second.child.kill('SIGINT')
    expect((await second.exited).code).toBe(0)
  }, 180_000)
})
