// `nvisy run --partitions 4` copies a PostgreSQL table into another: add rows while it runs,
// SIGKILL it mid-run, add rows, start it again with the same checkpoint file, and prove by PostgreSQL's own md5 that
// the destination holds exactly the source: each partition resumed from its own checkpoint,
// none read twice, completed partitions not read again.
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Pipeline } from '@nvisy/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresConnection, postgresSkipReason, TestSchema } from './support/postgres.js'
import {
  kill9,
  type RunSummaryJson,
  runToEnd,
  scratch,
  startRun,
  waitFor,
  writePipeline,
} from './support/runtime-process.js'

const ROWS = 200_000
const PARTITIONS = 4
const skip = await postgresSkipReason()

interface StoredPlan {
  id: string
  partitions: { stream: { range?: { after?: string[]; through?: string[] } }; done: boolean }[]
}

type PartitionedSummary = RunSummaryJson & {
  plan: { id: string; requested: number; count: number; resumed: boolean }
  partitions: {
    index: number
    status: string
    skipped?: boolean
    checkpoint?: { cursor: string[] }
    stats?: { nodes: Record<string, { items: number }> }
  }[]
}

describe.skipIf(skip)(
  'nvisy run --partitions 4, PostgreSQL -> PostgreSQL, SIGKILL and resume',
  () => {
    const db = new TestSchema()
    let work: Awaited<ReturnType<typeof scratch>>
    let config: string

    beforeAll(async () => {
      work = await scratch('pg-partitions')
      // Only the providers this test uses: nothing else's build can get in its way.
      config = join(work.dir, 'nvisy.config.json')
      await writeFile(config, JSON.stringify({ providers: ['@nvisy/provider-postgres'] }))
      await db.create()
      await db.createTable('src')
      await db.createTable('dst')
      await db.seed('src', 1, ROWS)
    })

    afterAll(async () => {
      await db.drop()
      await work?.cleanup()
    })

    it('resumes every partition from its own checkpoint: the same md5 on both sides, nothing lost or doubled', async () => {
      const pipeline: Pipeline = {
        id: 'pg-partitions',
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
          },
        ],
        edges: [{ from: 'src', to: 'dst' }],
        options: { checkpointEveryItems: 4000, checkpointEverySeconds: 1 },
      }
      const file = await writePipeline(work.dir, 'pg-partitions', pipeline)
      const checkpoints = join(work.dir, 'checkpoints.json')
      const args = ['--config', config, '--partitions', String(PARTITIONS)]
      const stored = () => {
        try {
          return JSON.parse(readFileSync(checkpoints, 'utf8')) as Record<
            string,
            { context: unknown; runId: string }
          >
        } catch {
          return {}
        }
      }
      const partitionKey = (planId: string, index: number) =>
        `pg-partitions__p${planId}_${index}.src`

      // First attempt: killed once every partition has saved a checkpoint and a good part, but
      // not all, of the rows is in the sink.
      const first = startRun(file, checkpoints, { runId: 'pg-part-1', extraArgs: args })
      await waitFor(
        'a checkpoint of every partition and 30% of the rows in the sink',
        async () => {
          const entries = stored()
          const plan = entries['pg-partitions__partitions.src']?.context as StoredPlan | undefined
          if (!plan) return false
          const saved = plan.partitions.filter((_, i) => entries[partitionKey(plan.id, i)])
          return saved.length === PARTITIONS && (await db.count('dst')) >= ROWS * 0.3
        },
        180_000,
        100,
      )
      // Rows inserted while the partitions run, past the last key: the last partition's.
      await db.seed('src', ROWS + 1, ROWS + 250)
      const killed = await kill9(first)
      expect(killed.signal).toBe('SIGKILL')
      const atKill = await db.count('dst')
      expect(atKill, 'the kill must land mid-run').toBeLessThan(ROWS)

      // The plan: four disjoint key ranges of the primary key, the last one open-ended.
      const entries = stored()
      const plan = entries['pg-partitions__partitions.src']!.context as StoredPlan
      expect(plan.partitions).toHaveLength(PARTITIONS)
      const bounds = plan.partitions.map((p) => ({
        after: p.stream.range?.after ? Number(p.stream.range.after[0]) : 0,
        through: p.stream.range?.through
          ? Number(p.stream.range.through[0])
          : Number.POSITIVE_INFINITY,
      }))
      expect(bounds[0]!.after).toBe(0)
      expect(bounds[PARTITIONS - 1]!.through).toBe(Number.POSITIVE_INFINITY)
      for (let i = 1; i < PARTITIONS; i++) expect(bounds[i]!.after).toBe(bounds[i - 1]!.through)
      // Each partition's checkpoint never runs ahead of the sink: every key of its range up to
      // it is written.
      const positions: number[] = []
      for (const [i, range] of bounds.entries()) {
        const saved = entries[partitionKey(plan.id, i)]!
        expect(saved.runId).toBe('pg-part-1')
        const at = Number((saved.context as { cursor: string[] }).cursor[0])
        expect(at).toBeGreaterThan(range.after)
        positions.push(at)
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM ${db.name}.dst WHERE id > $1 AND id <= $2`,
          [range.after, at],
        )
        expect(rows[0].n, `partition ${i}: rows up to its checkpoint ${at}`).toBe(at - range.after)
      }

      // The sink also committed each partition's offset with its rows (exactly-once appends),
      // under the partition's own key: a resumed partition starts from the further of the two.
      const { rows: offsetRows } = await db.pool.query(
        `SELECT key, context::text AS context FROM ${db.name}._nvisy_offsets ORDER BY key`,
      )
      const offsets = new Map<string, number>(
        offsetRows.map((r) => [r.key as string, Number(JSON.parse(r.context).cursor[0])]),
      )
      for (const key of offsets.keys())
        expect(key).toMatch(new RegExp(`^pg-partitions__p${plan.id}_[0-3]/src/dst$`))
      const starts = positions.map((at, i) =>
        Math.max(at, offsets.get(`pg-partitions__p${plan.id}_${i}/src/dst`) ?? 0),
      )
      for (const [i, start] of starts.entries()) {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM ${db.name}.dst WHERE id > $1 AND id <= $2`,
          [bounds[i]!.after, start],
        )
        expect(rows[0].n, `partition ${i}: rows up to its offset ${start}`).toBe(
          start - bounds[i]!.after,
        )
      }

      // Rows added while the run was down: past the last key, they belong to the last partition.
      await db.seed('src', ROWS + 251, ROWS + 500)

      // Second attempt: the same plan, each unfinished partition from its own checkpoint.
      const second = await runToEnd(file, checkpoints, { runId: 'pg-part-2', extraArgs: args })
      const summary = second.summary as PartitionedSummary
      expect(summary.error).toBeUndefined()
      expect(second.code).toBe(0)
      expect(summary.status).toBe('completed')
      expect(summary.plan).toMatchObject({ id: plan.id, count: PARTITIONS, resumed: true })
      const doneBefore = plan.partitions.map((p) => p.done)
      expect(summary.partitions.map((p) => p.skipped === true)).toEqual(doneBefore)
      // What the resumed partitions read is exactly what followed their checkpoints.
      const read = summary.stats.nodes.src!.items
      const remaining = bounds.reduce(
        (sum, range, i) =>
          doneBefore[i] ? sum : sum + Math.min(range.through, ROWS + 500) - starts[i]!,
        0,
      )
      expect(read).toBe(remaining)

      if (doneBefore[PARTITIONS - 1]) {
        // The last partition had completed before the kill: the new rows are the next run's.
        expect(await db.count('dst')).toBe(ROWS)
        const third = await runToEnd(file, checkpoints, { runId: 'pg-part-3', extraArgs: args })
        expect(third.code).toBe(0)
        expect(third.summary.stats.nodes.src!.items).toBe(500)
      }

      expect(await db.missing('src', 'dst')).toEqual([])
      expect(await db.duplicates('dst')).toBe(0)
      expect(await db.count('dst')).toBe(ROWS + 500)
      expect(await db.md5('dst')).toBe(await db.md5('src'))
    })
  },
)
