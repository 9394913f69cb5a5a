import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { DocumentData, GuardedConnection, MessageData } from '@nvisy/provider-core'
import { freePort, readAll, serviceSkipReason } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisProvider } from './index.js'

// A three-master Redis Cluster started from the local redis-server binary (no Docker here).
const run = promisify(execFile)
const hasBinaries = await run('redis-server', ['--version']).then(
  () => run('redis-cli', ['--version']).then(() => true),
  () => false,
)
const skip = await serviceSkipReason(
  'redis-server and redis-cli binaries (for a local cluster)',
  'PATH',
  async () => hasBinaries,
)

const signal = () => new AbortController().signal

function collect(connection: GuardedConnection, stream: unknown, after?: unknown) {
  return readAll(connection, stream, { after })
}

describe.skipIf(skip)('redis provider on a Redis Cluster', () => {
  const servers: ChildProcess[] = []
  const ports: number[] = []
  let dir = ''
  let connection: GuardedConnection

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nvisy-redis-cluster-'))
    for (let i = 0; i < 3; i++) {
      // Cluster bus port = port + 10000, so pick ports below 55535.
      let port = await freePort()
      while (port > 55_000) port = await freePort()
      ports.push(port)
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      )
      servers.push(child)
    }
    for (const port of ports) {
      for (let attempt = 0; ; attempt++) {
        const ok = await run('redis-cli', ['-p', String(port), 'ping']).then(
          (r) => r.stdout.includes('PONG'),
          () => false,
        )
        if (ok) break
        if (attempt > 50) throw new Error(`redis-server on ${port} did not start`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (let attempt = 0; ; attempt++) {
      const info = await run('redis-cli', ['-p', String(ports[0]), 'cluster', 'info']).then(
        (r) => r.stdout,
      )
      if (info.includes('cluster_state:ok')) break
      if (attempt > 100) throw new Error('cluster did not become ok')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    connection = await redisProvider.connect({
      credentials: {},
      params: { cluster: [{ host: '127.0.0.1', port: ports[0]! }] },
    })
  }, 60_000)

  afterAll(async () => {
    await connection?.close()
    for (const child of servers) child.kill('SIGKILL')
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('checks, and writes and reads a stream idempotently (dedupe key in the stream slot)', async () => {
    await connection.check()
    const stream = { kind: 'stream', key: 'orders' }
    const batch: MessageData[] = Array.from({ length: 50 }, (_, i) => ({
      kind: 'message',
      id: `m-${i}`,
      payload: Buffer.from([i, 0, 255]),
    }))
    expect(await connection.write(stream, batch, { signal: signal() })).toEqual({
      written: 50,
      failed: [],
    })
    expect(await connection.write(stream, batch, { signal: signal() })).toEqual({
      written: 50,
      failed: [],
    })
    const items = await collect(connection, { ...stream, count: 7 })
    expect(items.map((item) => (item.data as MessageData).id)).toEqual(batch.map((m) => m.id))
    const rest = await collect(connection, stream, items[20]!.context)
    expect(rest.length).toBe(29)
  })

  it('writes documents across slots and reads them back by scanning every master, resumable', async () => {
    const prefix = 'docs:'
    const docs: DocumentData[] = Array.from({ length: 60 }, (_, i) => ({
      kind: 'document',
      id: `d-${i}`,
      content: { i },
    }))
    expect(
      await connection.write({ kind: 'document', prefix }, docs, { signal: signal() }),
    ).toEqual({
      written: 60,
      failed: [],
    })
    // Let the servers finish growing their hash tables (active rehashing runs every 100 ms):
    // SCAN pages repeat only while the table is not being resized.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const stream = { kind: 'document', prefix, count: 4 }
    const all = await collect(connection, stream)
    const ids = all.map((item) => (item.data as DocumentData).id)
    expect([...ids].sort()).toEqual(docs.map((d) => d.id).sort())
    expect(new Set(all.map((item) => (item.context as { node: string }).node)).size).toBe(3)
    for (const k of [0, 19, 20, 40, 58]) {
      const rest = await collect(connection, stream, JSON.parse(JSON.stringify(all[k]!.context)))
      expect(
        rest.map((item) => (item.data as DocumentData).id),
        `resume after ${k}: ${JSON.stringify(all.slice(k - 1, k + 3).map((i) => i.context))} ${JSON.stringify(rest.slice(0, 3).map((i) => i.context))}`,
      ).toEqual(ids.slice(k + 1))
    }
    const deleted = await connection.delete({ kind: 'document', prefix }, ['d-1', 'd-2'], {
      signal: signal(),
    })
    expect(deleted).toEqual({ written: 2, failed: [] })
  })
})
