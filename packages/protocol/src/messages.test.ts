import type { TSchema, ValidationIssue } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  CancelReplySchema,
  CancelRequestSchema,
  CheckpointValueSchema,
  CheckReplySchema,
  CheckRequestSchema,
  checkpointKey,
  createSubjects,
  DiscoverReplySchema,
  DiscoverRequestSchema,
  ErrorReplySchema,
  errorReply,
  isErrorReply,
  type Pipeline,
  PipelineSchema,
  ProvidersReplySchema,
  ProvidersRequestSchema,
  parseMessage,
  RunEventSchema,
  RunsStartReplySchema,
  RunsStartRequestSchema,
  runCancelSubject,
  runEventsSubject,
  SealedCredentialsPlaintextSchema,
  subjects,
  validateMessage,
  validateRunEvent,
} from './index.js'

const at = '2025-01-02T03:04:05.678Z'
const publicKey = `X${'A'.repeat(55)}`

function pipeline(): Pipeline {
  return {
    id: 'orders-copy',
    nodes: [
      {
        id: 'src',
        role: 'source',
        provider: 'postgres',
        connection: { params: { host: 'db' }, sealedCredentials: 'c2VhbGVk' },
        stream: { table: 'orders' },
      },
      {
        id: 'dst',
        role: 'sink',
        provider: 's3',
        connection: { params: {}, credentials: { key: 'k' } },
        stream: { prefix: 'out/' },
        convert: 'jsonl',
        batch: { maxItems: 500 },
        concurrency: 2,
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
    options: { checkpointEveryItems: 1000, failureBudget: null },
  }
}

function issuesOf(schema: TSchema, value: unknown): ValidationIssue[] {
  const result = validateMessage(schema, value)
  if (result.ok) throw new Error(`expected ${JSON.stringify(value)} to be refused`)
  return result.issues
}

function expectIssue(issues: ValidationIssue[], path: string, rule: string) {
  expect(issues.map((i) => `${i.path} ${i.rule}`)).toContain(`${path} ${rule}`)
}

describe('subjects', () => {
  it('are versioned under nvisy.runtime.v1', () => {
    expect(subjects.providers).toBe('nvisy.runtime.v1.providers')
    expect(subjects.check).toBe('nvisy.runtime.v1.check')
    expect(subjects.discover).toBe('nvisy.runtime.v1.discover')
    expect(subjects.runsStart).toBe('nvisy.runtime.v1.runs.start')
    expect(runCancelSubject('r-1')).toBe('nvisy.runtime.v1.runs.r-1.cancel')
    expect(runEventsSubject('0b5e2c1a-1111-4222-8333-444455556666')).toBe(
      'nvisy.runtime.v1.events.0b5e2c1a-1111-4222-8333-444455556666',
    )
    expect(checkpointKey('p1', 'src')).toBe('p1.src')
    expect(createSubjects('test.x').runCancel('r')).toBe('test.x.runs.r.cancel')
  })

  it('refuse ids that would change the subject', () => {
    expect(() => runCancelSubject('a.b')).toThrow(/run id "a.b" must match/)
    expect(() => runEventsSubject('*')).toThrow(RangeError)
    expect(() => runEventsSubject('>')).toThrow(RangeError)
    expect(() => checkpointKey('p', 'a.b')).toThrow(/node id/)
  })
})

describe('requests (strict)', () => {
  it('providers: {} only', () => {
    expect(validateMessage(ProvidersRequestSchema, {}).ok).toBe(true)
    expectIssue(issuesOf(ProvidersRequestSchema, { x: 1 }), '/x', 'additionalProperties')
    expect(parseMessage(ProvidersRequestSchema, new Uint8Array()).ok).toBe(true)
  })

  it('check and discover', () => {
    for (const schema of [CheckRequestSchema, DiscoverRequestSchema]) {
      expect(validateMessage(schema, { provider: 'postgres', connection: { params: {} } }).ok).toBe(
        true,
      )
      expectIssue(issuesOf(schema, { connection: { params: {} } }), '/provider', 'required')
      expectIssue(
        issuesOf(schema, { provider: 'Postgres!', connection: { params: {} } }),
        '/provider',
        'pattern',
      )
      expectIssue(
        issuesOf(schema, { provider: 'pg', connection: {} }),
        '/connection/params',
        'required',
      )
      expectIssue(
        issuesOf(schema, { provider: 'pg', connection: { params: [] } }),
        '/connection/params',
        'type',
      )
      expectIssue(
        issuesOf(schema, {
          provider: 'pg',
          connection: { params: {}, sealedCredentials: 'not base64!' },
        }),
        '/connection/sealedCredentials',
        'pattern',
      )
      expectIssue(
        issuesOf(schema, {
          provider: 'pg',
          connection: { params: {}, sealedCredentials: 'A'.repeat(70_000) },
        }),
        '/connection/sealedCredentials',
        'maxLength',
      )
      expectIssue(
        issuesOf(schema, { provider: 'pg', connection: { params: {}, password: 'x' } }),
        '/connection/password',
        'additionalProperties',
      )
    }
  })

  it('runs.start with a full pipeline', () => {
    expect(validateMessage(RunsStartRequestSchema, { runId: 'r1', pipeline: pipeline() }).ok).toBe(
      true,
    )
    expect(
      validateMessage(RunsStartRequestSchema, {
        runId: '0b5e2c1a-1111-4222-8333-444455556666',
        pipeline: pipeline(),
        resume: false,
      }).ok,
    ).toBe(true)
    expectIssue(issuesOf(RunsStartRequestSchema, { pipeline: pipeline() }), '/runId', 'required')
    expectIssue(
      issuesOf(RunsStartRequestSchema, { runId: 'a.b', pipeline: pipeline() }),
      '/runId',
      'pattern',
    )
    expectIssue(
      issuesOf(RunsStartRequestSchema, { runId: 'r', pipeline: pipeline(), resume: 'yes' }),
      '/resume',
      'type',
    )
    for (const partitions of [1, 8, 1024, 'auto'])
      expect(
        validateMessage(RunsStartRequestSchema, { runId: 'r', pipeline: pipeline(), partitions })
          .ok,
      ).toBe(true)
    for (const partitions of [0, 1025, 2.5, 'all'])
      expect(
        issuesOf(RunsStartRequestSchema, { runId: 'r', pipeline: pipeline(), partitions }).some(
          (issue) => issue.path === '/partitions',
        ),
        `partitions ${JSON.stringify(partitions)}`,
      ).toBe(true)
  })

  it('pipeline: ids, roles, limits and unknown fields', () => {
    const bad = (change: (p: any) => void) => {
      const p: any = pipeline()
      change(p)
      return issuesOf(PipelineSchema, p)
    }
    expectIssue(
      bad((p) => {
        p.id = 'has space'
      }),
      '/id',
      'pattern',
    )
    expectIssue(
      bad((p) => {
        p.id = 'x'.repeat(129)
      }),
      '/id',
      'pattern',
    )
    expectIssue(
      bad((p) => {
        p.nodes = []
      }),
      '/nodes',
      'minItems',
    )
    expectIssue(
      bad((p) => {
        p.nodes = Array.from({ length: 65 }, () => p.nodes[0])
      }),
      '/nodes',
      'maxItems',
    )
    expectIssue(
      bad((p) => {
        p.nodes[1].role = 'filter'
      }),
      '/nodes/1/role',
      'const',
    )
    expectIssue(
      bad((p) => {
        p.nodes[0].stream = 'orders'
      }),
      '/nodes/0/stream',
      'type',
    )
    expectIssue(
      bad((p) => {
        delete p.nodes[0].connection
      }),
      '/nodes/0/connection',
      'required',
    )
    expectIssue(
      bad((p) => {
        p.nodes[1].batch.maxItems = 0
      }),
      '/nodes/1/batch/maxItems',
      'minimum',
    )
    expectIssue(
      bad((p) => {
        p.nodes[1].concurrency = 1.5
      }),
      '/nodes/1/concurrency',
      'type',
    )
    expectIssue(
      bad((p) => {
        p.nodes[1].convert = 'xml'
      }),
      '/nodes/1/convert',
      'const',
    )
    expectIssue(
      bad((p) => {
        p.nodes[1].extra = true
      }),
      '/nodes/1/extra',
      'additionalProperties',
    )
    expectIssue(
      bad((p) => {
        p.edges[0] = { from: 'src' }
      }),
      '/edges/0/to',
      'required',
    )
    expectIssue(
      bad((p) => {
        p.options.queueCapacity = 0
      }),
      '/options/queueCapacity',
      'minimum',
    )
    expectIssue(
      bad((p) => {
        p.options.failureBudget = -1
      }),
      '/options/failureBudget',
      'minimum',
    )
    expectIssue(
      bad((p) => {
        p.options.checkpointEverySeconds = 0
      }),
      '/options/checkpointEverySeconds',
      'exclusiveMinimum',
    )
  })

  it('sink convert options: record -> embedding columns', () => {
    const withEmbedding = (embedding: unknown) => {
      const p = pipeline() as any
      p.nodes[1].convert = { embedding }
      return p
    }
    expect(
      validateMessage(
        PipelineSchema,
        withEmbedding({ id: 'id', vector: 'embedding', dimension: 384, metadata: ['title'] }),
      ).ok,
    ).toBe(true)
    expect(validateMessage(PipelineSchema, withEmbedding({ id: 'id', vector: 'v' })).ok).toBe(true)
    expectIssue(
      issuesOf(PipelineSchema, withEmbedding({ id: 'id' })),
      '/nodes/1/convert/embedding/vector',
      'required',
    )
    expectIssue(
      issuesOf(PipelineSchema, withEmbedding({ id: 'id', vector: 'v', dimension: 0 })),
      '/nodes/1/convert/embedding/dimension',
      'minimum',
    )
    expectIssue(
      issuesOf(PipelineSchema, withEmbedding({ id: 'id', vector: 'v', sparse: 's' })),
      '/nodes/1/convert/embedding/sparse',
      'additionalProperties',
    )
  })

  it('cancel', () => {
    expect(validateMessage(CancelRequestSchema, {}).ok).toBe(true)
    expect(validateMessage(CancelRequestSchema, { reason: 'user asked' }).ok).toBe(true)
    expectIssue(issuesOf(CancelRequestSchema, { reason: 5 }), '/reason', 'type')
    expectIssue(issuesOf(CancelRequestSchema, { reason: 'x'.repeat(2000) }), '/reason', 'maxLength')
  })

  it('parseMessage refuses bytes that are not JSON without quoting them', () => {
    const result = parseMessage(
      CheckRequestSchema,
      new TextEncoder().encode('{"password": hunter22'),
    )
    expect(result).toEqual({
      ok: false,
      issues: [{ path: '/', rule: 'json', message: 'is not valid UTF-8 JSON' }],
    })
    expect(parseMessage(CheckRequestSchema, new Uint8Array([0xff, 0xfe])).ok).toBe(false)
    expectIssue((parseMessage(CheckRequestSchema, '[]') as any).issues, '/', 'type')
  })
})

describe('replies (open: unknown fields allowed)', () => {
  it('providers', () => {
    const reply = {
      runtime: { id: 'rt-1', version: '0.1.0', publicKey },
      providers: [
        {
          id: 'postgres',
          version: '0.1.0',
          specificationVersion: 'v1',
          capabilities: {
            read: true,
            write: true,
            discover: true,
            incremental: true,
            delete: false,
            sourceData: ['record'],
            sinkData: ['record'],
          },
          schemas: { credentials: { type: 'object' }, params: { type: 'object' } },
          ordering: 'primary key',
          newField: 1,
        },
      ],
    }
    expect(validateMessage(ProvidersReplySchema, reply).ok).toBe(true)
    expectIssue(
      issuesOf(ProvidersReplySchema, {
        ...reply,
        runtime: { ...reply.runtime, publicKey: 'UABC' },
      }),
      '/runtime/publicKey',
      'pattern',
    )
    const badKind = structuredClone(reply) as any
    badKind.providers[0].capabilities.sourceData = ['table']
    expectIssue(
      issuesOf(ProvidersReplySchema, badKind),
      '/providers/0/capabilities/sourceData/0',
      'const',
    )
  })

  it('check, discover, runs.start, cancel', () => {
    expect(validateMessage(CheckReplySchema, { ok: true, latencyMs: 3.2 }).ok).toBe(true)
    expectIssue(issuesOf(CheckReplySchema, { ok: false, latencyMs: 1 }), '/ok', 'const')
    expectIssue(issuesOf(CheckReplySchema, { ok: true, latencyMs: -1 }), '/latencyMs', 'minimum')
    expect(
      validateMessage(DiscoverReplySchema, {
        streams: [
          {
            name: 'orders',
            type: 'table',
            data: 'record',
            stream: { table: 'orders' },
            fields: [{ name: 'id', type: 'int8', primaryKey: true }],
          },
        ],
      }).ok,
    ).toBe(true)
    expectIssue(
      issuesOf(DiscoverReplySchema, {
        streams: [{ name: 'x', type: 't', data: 'rows', stream: {} }],
      }),
      '/streams/0/data',
      'const',
    )
    expect(
      validateMessage(RunsStartReplySchema, { accepted: true, runId: 'r', instanceId: 'i' }).ok,
    ).toBe(true)
    expectIssue(
      issuesOf(RunsStartReplySchema, { accepted: true, runId: 'r' }),
      '/instanceId',
      'required',
    )
    expect(validateMessage(CancelReplySchema, { cancelled: true }).ok).toBe(true)
    expectIssue(issuesOf(CancelReplySchema, {}), '/cancelled', 'required')
  })

  it('errorReply builds a valid error reply', () => {
    const reply = errorReply('validation', 'bad request', [
      { path: '/runId', rule: 'required', message: 'is required' },
    ])
    expect(validateMessage(ErrorReplySchema, reply).ok).toBe(true)
    expect(isErrorReply(reply)).toBe(true)
    expect(errorReply('not_found', 'no run')).toEqual({
      error: { kind: 'not_found', message: 'no run' },
    })
    expectIssue(
      issuesOf(ErrorReplySchema, { error: { kind: 'oops', message: 'x' } }),
      '/error/kind',
      'const',
    )
    expect(isErrorReply({ cancelled: true })).toBe(false)
  })

  it('checkpoint value', () => {
    expect(validateMessage(CheckpointValueSchema, { context: { id: 5 }, runId: 'r', at }).ok).toBe(
      true,
    )
    expectIssue(issuesOf(CheckpointValueSchema, { runId: 'r', at }), '/context', 'required')
    expectIssue(
      issuesOf(CheckpointValueSchema, { context: 1, runId: 'r', at: 'yesterday' }),
      '/at',
      'format',
    )
  })
})

describe('run events', () => {
  const base = { runId: 'r1', pipelineId: 'p1', at, seq: 0 }
  const valid = [
    { type: 'started', ...base },
    { type: 'progress', ...base, nodes: { src: { items: 10, bytes: 100, failed: 0 } } },
    { type: 'checkpoint', ...base, nodeId: 'src', context: { id: '10' } },
    {
      type: 'item_failed',
      ...base,
      nodeId: 'dst',
      index: 3,
      item: 'record #3',
      error: { kind: 'data', message: 'bad value' },
    },
    {
      type: 'prepared',
      ...base,
      nodeId: 'dst',
      existed: false,
      actions: ['CREATE TABLE "public"."t" ("id" bigint NOT NULL, PRIMARY KEY ("id"))'],
    },
    {
      type: 'completed',
      ...base,
      stats: { nodes: {}, failedItems: 2, refusedItems: 0, deadLettered: 2, durationMs: 5 },
    },
    {
      type: 'partial',
      ...base,
      stats: { nodes: {}, failedItems: 3, refusedItems: 3, deadLettered: 0, durationMs: 5 },
    },
    { type: 'failed', ...base, error: { kind: 'auth', message: 'denied', providerId: 'postgres' } },
    { type: 'cancelled', ...base, reason: 'user', checkpoints: { src: { id: '10' } } },
  ]

  it('accepts every type, through the union and by type', () => {
    for (const event of valid) {
      expect(validateMessage(RunEventSchema, event).ok, event.type).toBe(true)
      expect(validateRunEvent(event).ok, event.type).toBe(true)
    }
  })

  it('names the field and rule of a bad event of a known type', () => {
    const issues = (event: unknown) => {
      const result = validateRunEvent(event)
      if (result.ok) throw new Error('expected a refusal')
      return result.issues
    }
    expectIssue(
      issues({ type: 'progress', ...base, nodes: { src: { items: -1, bytes: 0, failed: 0 } } }),
      '/nodes/src/items',
      'minimum',
    )
    expectIssue(
      issues({ type: 'progress', ...base, nodes: { 'a.b': { items: 1, bytes: 0, failed: 0 } } }),
      '/nodes',
      'propertyNames',
    )
    expectIssue(issues({ type: 'checkpoint', ...base, context: 1 }), '/nodeId', 'required')
    expectIssue(
      issues({
        type: 'item_failed',
        ...base,
        nodeId: 'x',
        item: 'i',
        error: { kind: 'boom', message: 'm' },
      }),
      '/error/kind',
      'const',
    )
    expectIssue(issues({ type: 'failed', ...base }), '/error', 'required')
    expectIssue(issues({ type: 'partial', ...base }), '/stats', 'required')
    expectIssue(
      issues({
        type: 'partial',
        ...base,
        stats: { nodes: {}, failedItems: 1, refusedItems: -1, durationMs: 1 },
      }),
      '/stats/refusedItems',
      'minimum',
    )
    expectIssue(issues({ type: 'cancelled', ...base }), '/checkpoints', 'required')
    expectIssue(issues({ type: 'started', ...base, seq: -1 }), '/seq', 'minimum')
    expectIssue(issues({ type: 'started', ...base, at: 'now' }), '/at', 'format')
    expectIssue(issues({ type: 'started', ...base, runId: undefined }), '/runId', 'required')
    expectIssue(issues({ type: 'paused', ...base }), '/type', 'enum')
    expectIssue(issues({ ...base }), '/type', 'required')
    expect(validateRunEvent(null).ok).toBe(false)
  })
})

describe('nesting limit', () => {
  it('refuses a message nested deeper than MAX_MESSAGE_DEPTH with the path and the maxDepth rule', async () => {
    const {
      parseMessage: parse,
      CheckRequestSchema: schema,
      MAX_MESSAGE_DEPTH: limit,
    } = await import('./index.js')
    // Built as text: JSON.stringify itself would overflow on such a value.
    const deep = `${'{"a":'.repeat(5_000)}"x"${'}'.repeat(5_000)}`
    const message = `{"provider":"fs","connection":{"params":{"root":${deep}}}}`
    const result = parse(schema, message)
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.issues[0]!.rule).toBe('maxDepth')
    expect(result.issues[0]!.path.startsWith('/connection/params/root/a/a')).toBe(true)
    let shallow: unknown = 'x'
    for (let i = 0; i < limit - 4; i++) shallow = { a: shallow }
    expect(
      parse(schema, JSON.stringify({ provider: 'fs', connection: { params: { root: shallow } } }))
        .ok,
    ).toBe(true)
  })
})

describe('sealed credentials v2 schema (credentials.sealed.json)', () => {
  const binding = {
    operation: 'run',
    runId: 'run-0001',
    nodeId: 'src',
    provider: 'postgres',
    destination: '860e6e06e4b9eab9849a2e6596031a45b68d6f5d52d66f0a36544bac7918d835',
    expiresAt: 1767225900000,
    nonce: 'AAECAwQFBgcICQoLDA0ODw==',
  }
  const rules = (value: unknown) => {
    const result = validateMessage(SealedCredentialsPlaintextSchema, value)
    return result.ok ? [] : result.issues.map((i) => `${i.path} ${i.rule}`)
  }

  it('accepts a run binding and a check binding, refuses v1, extra fields and bad nonces', () => {
    expect(rules({ v: 2, binding, credentials: { user: 'u' } })).toEqual([])
    const check = { ...binding, operation: 'check', requestId: 'q-1', connectionId: 'c1' }
    delete (check as Record<string, unknown>).runId
    delete (check as Record<string, unknown>).nodeId
    expect(rules({ v: 2, binding: check, credentials: {} })).toEqual([])
    expect(rules({ v: 1, binding, credentials: {} })).not.toEqual([])
    expect(rules({ v: 2, binding: { ...binding, extra: 1 }, credentials: {} })).not.toEqual([])
    expect(rules({ v: 2, binding: { ...binding, nonce: 'AAAA' }, credentials: {} })).not.toEqual([])
    expect(
      rules({ v: 2, binding: { ...binding, destination: 'xyz' }, credentials: {} }),
    ).not.toEqual([])
    expect(rules({ user: 'u', password: 'p' })).not.toEqual([])
  })

  it('check and discover take an optional requestId', () => {
    const connection = { params: {}, sealedCredentials: 'AAAA' }
    for (const schema of [CheckRequestSchema, DiscoverRequestSchema]) {
      expect(validateMessage(schema, { requestId: 'q-1', provider: 'pg', connection }).ok).toBe(
        true,
      )
      expect(validateMessage(schema, { provider: 'pg', connection }).ok).toBe(true)
      expect(validateMessage(schema, { requestId: 'bad id!', provider: 'pg', connection }).ok).toBe(
        false,
      )
    }
  })
})
