// `nvisy serve` confines local paths (the fs provider's root) to an allowlist: through the
// dispatcher, against the real NATS server.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { createSubjects } from '@nvisy/protocol'
import { memoryLogger } from '@nvisy/provider-core'
import { fsProvider } from '@nvisy/provider-fs'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { MapProviderRegistry } from '../registry.js'
import { type Dispatcher, type DispatcherNaming, startDispatcher } from './index.js'
import { fsRootsFrom, LocalPathPolicy } from './local-paths.js'

const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const natsHost = new URL(NATS_URL)
const skip = await serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
  tcpReachable(natsHost.hostname, Number(natsHost.port || 4222)),
)
const encoder = new TextEncoder()
const decoder = new TextDecoder()

function namingFor(label: string): DispatcherNaming {
  const suffix = `${label}${randomBytes(4).toString('hex')}`
  return {
    prefix: `nvisytest.${suffix}.v1`,
    eventsStream: `NVISY_TEST_EVENTS_${suffix}`,
    checkpointBucket: `nvisy-test-checkpoints-${suffix}`,
    queueGroup: `nvisy-runtime-${suffix}`,
    nonceBucket: `nvisy-test-nonces-${suffix}`,
  }
}

describe('fsRootsFrom', () => {
  it('takes every --fs-root, then NVISY_FS_ROOTS split on ":", made absolute', () => {
    expect(fsRootsFrom(['a', '/b'], { NVISY_FS_ROOTS: '/c:: d ' }, '/w')).toEqual([
      '/w/a',
      '/b',
      '/c',
      '/w/d',
    ])
    expect(fsRootsFrom(undefined, {}, '/w')).toEqual([])
  })
})

describe.skipIf(skip)('serve: local paths confined to --fs-root', () => {
  let base: string
  let allowed: string
  let nc: NatsConnection
  const dispatchers: Dispatcher[] = []
  const logger = memoryLogger()

  async function serve(roots: string[] | undefined) {
    const naming = namingFor('fsroot')
    const dispatcher = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([fsProvider]),
      execute: executePipeline,
      allowPlainCredentials: true,
      logger,
      naming,
      ...(roots === undefined ? {} : { localPathRoots: roots }),
      executeOptions: { progressIntervalMs: 20, retryBaseDelayMs: 5 },
    })
    dispatchers.push(dispatcher)
    return createSubjects(naming.prefix)
  }

  async function request(subject: string, body: unknown): Promise<any> {
    const reply = await nc.request(subject, encoder.encode(JSON.stringify(body)), {
      timeout: 10_000,
    })
    return JSON.parse(decoder.decode(reply.data))
  }

  const check = (root: string, what = 'check') => ({
    requestId: `req-${randomBytes(4).toString('hex')}`,
    provider: 'fs',
    connection: { params: { root }, credentials: {} },
    ...(what === 'check' ? {} : {}),
  })

  function runOf(sourceRoot: string, sinkRoot: string) {
    return {
      runId: `run-${randomBytes(6).toString('hex')}`,
      pipeline: {
        id: `fsroot-${randomBytes(3).toString('hex')}`,
        nodes: [
          {
            id: 'in',
            role: 'source',
            provider: 'fs',
            connection: { params: { root: sourceRoot }, credentials: {} },
            stream: { kind: 'blob' },
          },
          {
            id: 'out',
            role: 'sink',
            provider: 'fs',
            connection: { params: { root: sinkRoot }, credentials: {} },
            stream: { kind: 'blob' },
          },
        ],
        edges: [{ from: 'in', to: 'out' }],
      },
    }
  }

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'nvisy-fsroot-'))
    allowed = join(base, 'allowed')
    await mkdir(join(allowed, 'in'), { recursive: true })
    await mkdir(join(allowed, 'out'), { recursive: true })
    await writeFile(join(allowed, 'in', 'a.txt'), 'hello')
    await mkdir(join(base, 'secret'))
    await writeFile(join(base, 'secret', 'key.pem'), 'secret')
    // A symlink inside the allowed folder that leads out of it.
    await symlink(join(base, 'secret'), join(allowed, 'escape'))
    nc = await connect({ servers: NATS_URL })
  })

  afterAll(async () => {
    for (const d of dispatchers) await d.close()
    await nc?.close()
    await rm(base, { recursive: true, force: true })
  })

  it('refuses every local path when no folder is allowed (the default)', async () => {
    const subjects = await serve(undefined)
    for (const [subject, body] of [
      [subjects.check, check(join(base, 'allowed'))],
      [subjects.discover, check('/')],
    ] as const) {
      const reply = await request(subject, body)
      expect(reply.error?.kind).toBe('config')
      expect(reply.error.issues).toEqual([
        expect.objectContaining({ path: '/connection/params/root', rule: 'fs-root' }),
      ])
      expect(reply.error.message).toMatch(/--fs-root/)
    }
    const run = await request(subjects.runsStart, runOf(join(allowed, 'in'), join(allowed, 'out')))
    expect(run.error?.kind).toBe('config')
    expect(run.error.issues.map((i: any) => i.path)).toEqual([
      '/pipeline/nodes/0/connection/params/root',
      '/pipeline/nodes/1/connection/params/root',
    ])
  })

  it('with --fs-root: inside is served; outside, "..", and symlinks out are refused', async () => {
    const subjects = await serve([allowed])
    const ok = await request(subjects.check, check(join(allowed, 'in')))
    expect(ok).toMatchObject({ ok: true })
    const listed = await request(subjects.discover, check(allowed))
    expect(listed.streams).toBeDefined()

    for (const root of [
      '/etc',
      '/',
      base,
      join(allowed, '..', 'secret'),
      join(allowed, 'escape'),
      join(allowed, 'escape', 'sub-that-does-not-exist'),
      `${allowed}-sibling`,
    ]) {
      for (const subject of [subjects.check, subjects.discover]) {
        const reply = await request(subject, check(root))
        expect(reply.error?.kind, root).toBe('config')
        expect(reply.error.issues?.[0]?.path, root).toBe('/connection/params/root')
      }
    }
    // runs.start copying /etc (or the secret folder) into the allowed folder is refused whole.
    for (const source of ['/etc', join(allowed, 'escape')]) {
      const run = await request(subjects.runsStart, runOf(source, join(allowed, 'out')))
      expect(run.error?.kind).toBe('config')
      expect(run.error.issues.map((i: any) => i.path)).toEqual([
        '/pipeline/nodes/0/connection/params/root',
      ])
    }
    expect(await readdir(join(allowed, 'out'))).toEqual([])
    // Inside the allowlist a run is accepted and copies the file.
    const accepted = await request(
      subjects.runsStart,
      runOf(join(allowed, 'in'), join(allowed, 'out')),
    )
    expect(accepted).toMatchObject({ accepted: true })
    for (let i = 0; i < 100 && !(await readdir(join(allowed, 'out'))).includes('a.txt'); i++)
      await new Promise((r) => setTimeout(r, 50))
    expect(await readdir(join(allowed, 'out'))).toContain('a.txt')
  })

  it('LocalPathPolicy refuses a path it cannot resolve (too long, a loop) instead of failing', async () => {
    const policy = new LocalPathPolicy([allowed])
    await symlink(join(allowed, 'loop-b'), join(allowed, 'loop-a'))
    await symlink(join(allowed, 'loop-a'), join(allowed, 'loop-b'))
    for (const root of [join(allowed, 'x'.repeat(5000)), join(allowed, 'loop-a', 'in')]) {
      const issues = await policy.issues(fsProvider, { root }, '/p')
      expect(issues).toEqual([expect.objectContaining({ path: '/p/root', rule: 'fs-root' })])
    }
  })

  it('LocalPathPolicy compares real paths on both sides', async () => {
    const policy = new LocalPathPolicy([join(allowed, 'escape')])
    // The allowed folder is itself a symlink: what it leads to is allowed, its old name's
    // neighbour is not.
    expect(await policy.issues(fsProvider, { root: join(base, 'secret') }, '/p')).toEqual([])
    expect(await policy.issues(fsProvider, { root: allowed }, '/p')).toHaveLength(1)
  })
})
