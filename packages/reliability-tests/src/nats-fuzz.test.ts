// Fuzz the NATS boundary: over 10,000 random and mutated messages on every request subject
// of @nvisy/protocol, against a dispatcher started in-process with its own subjects, stream
// and bucket. Every request gets a reply that is a protocol error reply (or a valid reply
// when the message happened to be valid), the dispatcher stays up, a run started before the
// fuzz completes exactly, and the heap after GC stays flat.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { createCurve } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  CancelReplySchema,
  CancelRequestSchema,
  CheckReplySchema,
  createSubjects,
  DiscoverReplySchema,
  ErrorReplySchema,
  type Pipeline,
  ProvidersReplySchema,
  parseMessage,
  type RunEvent,
  RunsStartReplySchema,
  validateMessage,
} from '@nvisy/protocol'
import { memoryLogger, type TSchema } from '@nvisy/provider-core'
import { fsProvider } from '@nvisy/provider-fs'
import {
  type Dispatcher,
  type DispatcherNaming,
  executePipeline,
  MapProviderRegistry,
  startDispatcher,
} from '@nvisy/runtime'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeJsonl } from './support/files.js'
import { fuzzMessage, type Mutation, prng } from './support/fuzz.js'
import { NATS_URL, natsConnect, natsSkipReason } from './support/nats.js'
import { scratch } from './support/runtime-process.js'

// Requests actually sent: a valid cancel drawn for the protected run is skipped, not sent, so
// the loop runs until this many went out (a fixed count of draws fell short with some seeds).
const MESSAGES = Number(process.env.NVISY_FUZZ_MESSAGES ?? 10_000)
const SEED = Number(process.env.NVISY_FUZZ_SEED ?? Date.now() % 2 ** 31)
const IN_FLIGHT = 24
const PROTECTED_DOCUMENTS = 40_000
const skip = await natsSkipReason()
const decoder = new TextDecoder()

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc (the package vitest.config.ts sets it)')
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}

describe.skipIf(skip)('NATS boundary fuzzing', () => {
  const suffix = Math.random().toString(36).slice(2, 10)
  const naming: DispatcherNaming = {
    prefix: `nvisyfuzz.${suffix}.v1`,
    eventsStream: `NVISY_FUZZ_EVENTS_${suffix}`,
    checkpointBucket: `nvisy-fuzz-checkpoints-${suffix}`,
    queueGroup: `nvisy-fuzz-${suffix}`,
  }
  const subjects = createSubjects(naming.prefix)
  const logger = memoryLogger()
  const serverKey = createCurve()
  let dispatcher: Dispatcher
  let client: NatsConnection
  let work: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    work = await scratch('fuzz')
    await mkdir(join(work.dir, 'in/files'), { recursive: true })
    await mkdir(join(work.dir, 'out'), { recursive: true })
    await writeFile(join(work.dir, 'in/files/a.txt'), 'a')
    await writeFile(join(work.dir, 'in/files/b.txt'), 'bb')
    await writeJsonl(join(work.dir, 'in/docs.jsonl'), PROTECTED_DOCUMENTS, (i) => ({
      id: `d${i}`,
      i,
    }))
    dispatcher = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([fsProvider]),
      execute: executePipeline,
      serverPublicKey: serverKey.getPublicKey(),
      logger,
      naming,
      instanceId: `fuzz-${suffix}`,
      localPathRoots: [work.dir], // fs roots must be allowed (nvisy serve --fs-root)
      drainTimeoutMs: 10_000,
      executeOptions: { progressIntervalMs: 200 },
    })
    client = await natsConnect()
  })

  afterAll(async () => {
    await dispatcher?.close()
    if (client) {
      const jsm = await jetstreamManager(client)
      await jsm.streams.delete(naming.eventsStream).catch(() => {})
      await jsm.streams.delete(`KV_${naming.checkpointBucket}`).catch(() => {})
      await client.close()
    }
    await work?.cleanup()
  })

  async function waitForTerminal(runId: string, timeoutMs = 120_000): Promise<RunEvent> {
    const js = jetstream(client)
    const consumer = await js.consumers.get(naming.eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const timer = setTimeout(() => messages.stop(), timeoutMs)
    try {
      for await (const message of messages) {
        const event = message.json<RunEvent>()
        if (['completed', 'failed', 'cancelled'].includes(event.type)) return event
      }
    } finally {
      clearTimeout(timer)
      messages.stop()
    }
    throw new Error(`no terminal event for run ${runId} within ${timeoutMs} ms`)
  }

  const root = () => join(work.dir, 'in')
  const connection = () => ({ params: { root: root() } })

  function tinyPipeline(id: string): Pipeline {
    return {
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'fs',
          connection: connection(),
          stream: { kind: 'blob', prefix: 'files/' },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root: join(work.dir, 'out') } },
          stream: { kind: 'blob', prefix: `${id}/` },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
  }

  it('answers every fuzzed request, stays up, finishes the run it had, and keeps its heap flat', async () => {
    console.log(`[fuzz] seed ${SEED} (replay with NVISY_FUZZ_SEED=${SEED})`)
    const random = prng(SEED)
    const maxPayload = client.info?.max_payload ?? 1024 * 1024

    // The run started before the fuzz: 40k JSONL documents into another JSONL file.
    const protectedPipeline: Pipeline = {
      id: 'protected',
      nodes: [
        {
          id: 'docs',
          role: 'source',
          provider: 'fs',
          connection: connection(),
          stream: { kind: 'document', file: 'docs.jsonl' },
        },
        {
          id: 'copy',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root: join(work.dir, 'out') } },
          stream: { kind: 'document', file: 'protected.jsonl' },
          batch: { maxItems: 50 },
        },
      ],
      edges: [{ from: 'docs', to: 'copy' }],
      options: { checkpointEveryItems: 1000 },
    }
    const start = await client.request(
      subjects.runsStart,
      JSON.stringify({ runId: 'protected-run', pipeline: protectedPipeline }),
      { timeout: 10_000 },
    )
    expect(JSON.parse(decoder.decode(start.data))).toMatchObject({ accepted: true })
    const protectedDone = waitForTerminal('protected-run')

    const bases: { subject: string; base: any; reply: TSchema; onlyInvalid?: TSchema }[] = [
      { subject: subjects.providers, base: {}, reply: ProvidersReplySchema },
      {
        subject: subjects.check,
        base: { provider: 'fs', connection: connection() },
        reply: CheckReplySchema,
      },
      {
        subject: subjects.discover,
        base: { provider: 'fs', connection: connection() },
        reply: DiscoverReplySchema,
      },
      {
        subject: subjects.runsStart,
        base: { runId: 'fuzz-run', pipeline: tinyPipeline('fuzz-pipeline'), resume: false },
        reply: RunsStartReplySchema,
      },
      // A valid cancel would (rightly) cancel the protected run: only invalid ones are sent there.
      {
        subject: subjects.runCancel('protected-run'),
        base: { reason: 'fuzz' },
        reply: CancelReplySchema,
        onlyInvalid: CancelRequestSchema,
      },
    ]

    const tally = new Map<string, number>()
    const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1)
    const problems: string[] = []
    let sent = 0
    let baseline = 0
    let runsStarted = 0

    const one = async (index: number) => {
      const target = bases[index % bases.length]!
      let message = fuzzMessage(random, target.base, maxPayload)
      // Give each fuzzed run its own id so valid starts do not collide.
      if (target.subject === subjects.runsStart && message.mutation === 'valid') {
        const base = { ...target.base, runId: `fuzz-run-${index}` }
        message = { mutation: 'valid', payload: new TextEncoder().encode(JSON.stringify(base)) }
      }
      if (target.onlyInvalid && parseMessage(target.onlyInvalid, message.payload).ok) {
        count('skipped:valid-cancel')
        return
      }
      sent++
      let text: string
      try {
        const reply = await client.request(target.subject, message.payload, { timeout: 20_000 })
        text = decoder.decode(reply.data)
      } catch (error) {
        problems.push(
          `${target.subject} ${message.mutation}: no reply (${(error as Error).message})`,
        )
        return
      }
      let reply: any
      try {
        reply = JSON.parse(text)
      } catch {
        problems.push(
          `${target.subject} ${message.mutation}: reply is not JSON: ${text.slice(0, 200)}`,
        )
        return
      }
      if (validateMessage(ErrorReplySchema, reply).ok) {
        count(`error:${reply.error.kind}`)
        count(`${message.mutation as Mutation}->error`)
        if (reply.error.kind === 'internal') {
          problems.push(
            `${target.subject} ${message.mutation}: internal error reply: ${reply.error.message}`,
          )
        }
        return
      }
      const checked = validateMessage(target.reply, reply)
      if (!checked.ok) {
        problems.push(
          `${target.subject} ${message.mutation}: reply fits no schema: ${text.slice(0, 300)}`,
        )
        return
      }
      count(`ok:${target.subject.slice(naming.prefix.length + 1)}`)
      if (target.subject === subjects.runsStart) runsStarted++
    }

    let next = 0
    const worker = async () => {
      while (sent < MESSAGES) {
        const index = next++
        await one(index)
        if (index === 500) baseline = heapAfterGc()
      }
    }
    // The protected run is under way when the fuzz begins.
    expect(dispatcher.activeRuns()).toContain('protected-run')
    const started = Date.now()
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    const fuzzMs = Date.now() - started

    // Still up: the catalog answers.
    const protectedOutlivedFuzz = dispatcher.activeRuns().includes('protected-run')
    const catalog = JSON.parse(
      decoder.decode((await client.request(subjects.providers, '{}', { timeout: 10_000 })).data),
    )
    expect(validateMessage(ProvidersReplySchema, catalog).ok).toBe(true)

    const terminal = await protectedDone
    expect(terminal.type).toBe('completed')
    const copied = (await readFile(join(work.dir, 'out/protected.jsonl'), 'utf8'))
      .trim()
      .split('\n')
    const ids = copied.map((line) => JSON.parse(line).id as string)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.length).toBe(PROTECTED_DOCUMENTS)

    // Let the fuzzed runs that were valid finish before measuring.
    const deadline = Date.now() + 60_000
    while (dispatcher.activeRuns().length > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100))
    const growth = heapAfterGc() - baseline

    console.log(
      `[fuzz] ${sent} requests in ${fuzzMs} ms, ${runsStarted} fuzzed runs accepted, heap growth ${(growth / 1e6).toFixed(1)} MB, protected run still going after the fuzz: ${protectedOutlivedFuzz}\n` +
        [...tally]
          .sort()
          .map(([k, n]) => `  ${k}: ${n}`)
          .join('\n'),
    )
    expect(sent).toBeGreaterThanOrEqual(MESSAGES)
    expect(problems.slice(0, 20)).toEqual([])
    expect(growth).toBeLessThan(50e6)
  }, 240_000)
})
