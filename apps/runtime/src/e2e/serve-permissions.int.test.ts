// `nvisy serve` against NATS permissions: only the server's user may publish runs.start (the
// runtime's user may subscribe to it); another user's publish is refused by NATS itself
// (a permissions violation) and never reaches the runtime. And serve warns when it joins a
// NATS server without authentication.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { createSubjects } from '@nvisy/protocol'
import { freePort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))
const runtimeDir = join(here, '..', '..')
const TSX = join(runtimeDir, 'node_modules', 'tsx', 'dist', 'loader.mjs')
const CLI = join(runtimeDir, 'src', 'cli.ts')
const NATS_SERVER = process.env.NVISY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server'
const SHARED_NATS = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const skip = await serviceSkipReason('nats-server (the binary)', NATS_SERVER, async () =>
  existsSync(NATS_SERVER),
)

interface Serve {
  child: ChildProcess
  stderr(): string
  exited: Promise<number | null>
}

/** `nvisy serve` in its own process (the CLI entry, run from source through tsx). */
function serve(args: string[], env: NodeJS.ProcessEnv): Serve {
  const child = spawn(
    process.execPath,
    ['--import', `file://${TSX}`, CLI, 'serve', '--provider', '@nvisy/provider-fs', ...args],
    {
      cwd: runtimeDir,
      env: {
        ...process.env,
        NVISY_NATS_TOKEN: '',
        NVISY_NATS_USER: '',
        NVISY_NATS_PASSWORD: '',
        NVISY_NATS_CREDS_FILE: '',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  return { child, stderr: () => err, exited }
}

async function waitFor(run: Serve, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!run.stderr().includes(text)) {
    if (run.child.exitCode !== null)
      throw new Error(`nvisy serve exited ${run.child.exitCode} before "${text}":\n${run.stderr()}`)
    if (Date.now() > deadline) throw new Error(`no "${text}" in ${timeoutMs} ms:\n${run.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function stop(run: Serve): Promise<void> {
  if (run.child.exitCode === null) run.child.kill('SIGTERM')
  await Promise.race([run.exited, new Promise((r) => setTimeout(r, 15_000))])
  if (run.child.exitCode === null) run.child.kill('SIGKILL')
}

describe.skipIf(skip)('nvisy serve and NATS permissions', () => {
  const suffix = randomBytes(4).toString('hex')
  const prefix = `nvisyperm.${suffix}.v1`
  const subjects = createSubjects(prefix)
  const users = {
    runtime: { user: 'runtime', pass: `rt-${randomBytes(10).toString('hex')}` },
    server: { user: 'server', pass: `sv-${randomBytes(10).toString('hex')}` },
    other: { user: 'other', pass: `ot-${randomBytes(10).toString('hex')}` },
  }
  let natsDir: string
  let nats: ChildProcess | undefined
  let url: string
  const running: Serve[] = []
  const connections: NatsConnection[] = []

  beforeAll(async () => {
    natsDir = await mkdtemp(join(tmpdir(), 'nvisy-perm-nats-'))
    const port = await freePort()
    url = `nats://127.0.0.1:${port}`
    const conf = join(natsDir, 'nats.conf')
    // The runtime's user subscribes to everything it serves but may not publish requests to
    // itself; the server's user may publish anything; another user may publish nothing in the
    // runtime's namespace (and only receive replies).
    await writeFile(
      conf,
      `listen: "127.0.0.1:${port}"
jetstream { store_dir: "${join(natsDir, 'js')}" }
authorization {
  users: [
    { user: "${users.runtime.user}", password: "${users.runtime.pass}",
      permissions: { publish: { allow: [">"], deny: ["${prefix}.runs.start", "${prefix}.check", "${prefix}.discover"] }, subscribe: { allow: [">"] } } },
    { user: "${users.server.user}", password: "${users.server.pass}",
      permissions: { publish: { allow: [">"] }, subscribe: { allow: [">"] } } },
    { user: "${users.other.user}", password: "${users.other.pass}",
      permissions: { publish: { allow: [">"], deny: ["${prefix}.>"] }, subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
`,
    )
    nats = spawn(NATS_SERVER, ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] })
    const deadline = Date.now() + 15_000
    while (!(await tcpReachable('127.0.0.1', port))) {
      if (Date.now() > deadline) throw new Error('nats-server did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
  }, 60_000)

  afterAll(async () => {
    for (const run of running) await stop(run)
    for (const nc of connections) await nc.close().catch(() => {})
    nats?.kill('SIGTERM')
    if (natsDir) await rm(natsDir, { recursive: true, force: true })
  })

  async function as(who: keyof typeof users): Promise<NatsConnection> {
    const nc = await connect({ servers: url, user: users[who].user, pass: users[who].pass })
    connections.push(nc)
    return nc
  }

  it("another user's runs.start is refused by NATS and never reaches the runtime; the server's is served", async () => {
    const run = serve(['--subject-prefix', prefix, '--log-level', 'debug'], {
      NVISY_NATS_URL: url,
      NVISY_NATS_USER: users.runtime.user,
      NVISY_NATS_PASSWORD: users.runtime.pass,
    })
    running.push(run)
    await waitFor(run, '"serving"')
    expect(run.stderr()).not.toContain('without authentication')

    // A spy of the server's user sees every message that reaches the subject.
    const server = await as('server')
    const seen: string[] = []
    const spy = server.subscribe(subjects.runsStart)
    ;(async () => {
      for await (const m of spy) seen.push(decoder.decode(m.data))
    })()
    await server.flush()

    const other = await as('other')
    const errors: string[] = []
    ;(async () => {
      for await (const status of other.status()) {
        const text = JSON.stringify(status, (_k, v) => (v instanceof Error ? v.message : v))
        errors.push(text)
      }
    })()
    const marker = `other-${randomUUID()}`
    const attempt = await other
      .request(subjects.runsStart, encoder.encode(JSON.stringify({ runId: marker })), {
        timeout: 3000,
      })
      .then(
        () => 'answered',
        (error: Error) => `${error.name}: ${error.message} ${String((error as any).cause ?? '')}`,
      )
    await other.flush().catch(() => {})
    await new Promise((r) => setTimeout(r, 300))
    expect(attempt).not.toBe('answered')
    const violation = `${attempt} ${errors.join(' ')}`
    expect(violation).toMatch(/permission/i)
    expect(violation).toContain(subjects.runsStart)
    expect(seen.filter((m) => m.includes(marker))).toEqual([])
    expect(run.stderr()).not.toContain(marker)

    // The server's user reaches the runtime (a malformed request, answered with an error).
    const mine = `server-${randomUUID()}`
    const reply = await server.request(
      subjects.runsStart,
      encoder.encode(JSON.stringify({ runId: mine })),
      { timeout: 10_000 },
    )
    expect(JSON.parse(decoder.decode(reply.data)).error).toBeDefined()
    expect(seen.filter((m) => m.includes(mine))).toHaveLength(1)
  }, 120_000)

  it('warns (one line at warn) when it joins NATS without authentication', async () => {
    const run = serve(['--subject-prefix', `nvisyperm.anon${suffix}.v1`, '--log-level', 'info'], {
      NVISY_NATS_URL: SHARED_NATS,
    })
    running.push(run)
    await waitFor(run, '"serving"')
    const lines = run
      .stderr()
      .split('\n')
      .filter((l) => l.includes('without authentication'))
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!).level).toBe(40) // pino warn
    await stop(run)
  }, 120_000)
})
