// SIGKILL the runtime in the middle of a JSONL file (fs documents) -> JetStream run, start
// it again, and check every document id is in the stream exactly once: the replayed window
// carries the same Nats-Msg-Id and the stream's duplicate window drops it.
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Pipeline } from '@nvisy/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeJsonl } from './support/files.js'
import { NATS_URL, natsSkipReason, TestStream } from './support/nats.js'
import {
  kill9,
  runToEnd,
  scratch,
  startRun,
  waitFor,
  writePipeline,
} from './support/runtime-process.js'

const DOCUMENTS = 60_000
const skip = await natsSkipReason()

describe.skipIf(skip)('SIGKILL during a JSONL -> JetStream run', () => {
  const stream = new TestStream()
  let work: Awaited<ReturnType<typeof scratch>>
  let root: string

  beforeAll(async () => {
    work = await scratch('nats')
    root = join(work.dir, 'in')
    await mkdir(root)
    await writeJsonl(join(root, 'events.jsonl'), DOCUMENTS, (i) => ({
      id: `doc-${i}`,
      n: i,
      text: `événement ${i} "q"`,
      nested: { a: [i, null, true] },
    }))
    await stream.create()
  })

  afterAll(async () => {
    await stream.destroy()
    await work?.cleanup()
  })

  it('resumes after the kill: each message id exactly once in the stream', async () => {
    const pipeline: Pipeline = {
      id: 'jsonl-nats-kill',
      nodes: [
        {
          id: 'lines',
          role: 'source',
          provider: 'fs',
          connection: { params: { root } },
          stream: { kind: 'document', file: 'events.jsonl' },
        },
        {
          id: 'stream',
          role: 'sink',
          provider: 'nats',
          connection: { params: { servers: NATS_URL } },
          stream: { subject: stream.subject, stream: stream.name },
          batch: { maxItems: 500 },
        },
      ],
      edges: [{ from: 'lines', to: 'stream' }],
      options: { checkpointEveryItems: 2000, checkpointEverySeconds: 0.5 },
    }
    const file = await writePipeline(work.dir, 'jsonl-nats', pipeline)
    const checkpoints = join(work.dir, 'checkpoints.json')

    const first = startRun(file, checkpoints, { runId: 'jsonl-nats-1' })
    await waitFor(
      'a quarter of the documents in the stream',
      async () => (await stream.count()) >= DOCUMENTS / 4,
      120_000,
      25,
    )
    await kill9(first)
    const atKill = await stream.count()
    expect(atKill, 'the kill must land mid-run').toBeLessThan(DOCUMENTS)
    const saved = JSON.parse(await readFile(checkpoints, 'utf8'))['jsonl-nats-kill.lines']
    expect(saved.context.line).toBeGreaterThan(0)
    // The checkpoint never runs ahead of what the stream acknowledged.
    expect(saved.context.line).toBeLessThanOrEqual(atKill)

    const second = await runToEnd(file, checkpoints, { runId: 'jsonl-nats-2' })
    expect(second.summary.error).toBeUndefined()
    expect(second.summary.status).toBe('completed')
    expect(second.summary.stats.nodes.lines!.items).toBe(DOCUMENTS - saved.context.line)
    // The replayed window [checkpoint, kill] was published again and dropped as duplicates.
    expect(second.summary.stats.nodes.stream!.items).toBe(DOCUMENTS - saved.context.line)

    const ids = await stream.ids()
    const seen = new Map<string, number>()
    for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1)
    const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id)
    const missing: string[] = []
    for (let i = 0; i < DOCUMENTS; i++) if (!seen.has(`doc-${i}`)) missing.push(`doc-${i}`)
    expect(duplicated.slice(0, 10)).toEqual([])
    expect(missing.slice(0, 10)).toEqual([])
    expect(ids.length).toBe(DOCUMENTS)
  })
})
