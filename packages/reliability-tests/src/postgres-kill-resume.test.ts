// SIGKILL the runtime in the middle of a 200k-row PostgreSQL -> PostgreSQL copy, start it
// again with the same checkpoint file, and prove the sink holds exactly the source's rows.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Pipeline } from '@nvisy/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresConnection, postgresSkipReason, TestSchema } from './support/postgres.js'
import {
  kill9,
  runToEnd,
  scratch,
  startRun,
  waitFor,
  writePipeline,
} from './support/runtime-process.js'

const ROWS = 200_000
const skip = await postgresSkipReason()

describe.skipIf(skip)('SIGKILL during a PostgreSQL -> PostgreSQL run', () => {
  const db = new TestSchema()
  let work: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    work = await scratch('pg')
    await db.create()
    await db.createTable('src')
    await db.createTable('dst')
    await db.seed('src', 1, ROWS)
  })

  afterAll(async () => {
    await db.drop()
    await work?.cleanup()
  })

  it('resumes after the kill: same count and md5 on both sides, nothing lost or doubled', async () => {
    const pipeline: Pipeline = {
      id: 'pg-kill',
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'postgres',
          connection: postgresConnection(db.name),
          stream: { table: 'src', pageSize: 2000 },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'postgres',
          connection: postgresConnection(db.name),
          stream: { table: 'dst', mode: 'upsert' },
          batch: { maxItems: 2000 },
          concurrency: 2,
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 5000, checkpointEverySeconds: 1 },
    }
    const file = await writePipeline(work.dir, 'pg-kill', pipeline)
    const checkpoints = join(work.dir, 'checkpoints.json')

    // First attempt: killed once a good part, but not all, of the rows is in the sink and a
    // checkpoint has been written.
    const first = startRun(file, checkpoints, { runId: 'pg-kill-1' })
    await waitFor(
      'a checkpoint and 30% of the rows in the sink',
      async () => existsSync(checkpoints) && (await db.count('dst')) >= ROWS * 0.3,
      180_000,
      100,
    )
    const killed = await kill9(first)
    expect(killed.signal).toBe('SIGKILL')
    const atKill = await db.count('dst')
    expect(atKill, 'the kill must land mid-run').toBeLessThan(ROWS)

    // The saved checkpoint never runs ahead of the sink: every key up to it is written.
    const saved = JSON.parse(readFileSync(checkpoints, 'utf8'))['pg-kill.src']
    expect(saved.runId).toBe('pg-kill-1')
    const checkpointKey = Number(saved.context.cursor[0])
    expect(checkpointKey).toBeGreaterThan(0)
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM ${db.name}.dst WHERE id <= $1`,
      [checkpointKey],
    )
    expect(rows[0].n).toBe(checkpointKey)

    // Second attempt: resumes after the checkpoint and completes.
    const second = await runToEnd(file, checkpoints, { runId: 'pg-kill-2' })
    expect(second.summary.error).toBeUndefined()
    expect(second.code).toBe(0)
    expect(second.summary.status).toBe('completed')
    // It read only what came after the checkpoint (the replayed window is what the kill lost).
    expect(second.summary.stats.nodes.src!.items).toBe(ROWS - checkpointKey)

    expect(await db.missing('src', 'dst')).toEqual([])
    expect(await db.count('dst')).toBe(ROWS)
    expect(await db.md5('dst')).toBe(await db.md5('src'))
  })
})
