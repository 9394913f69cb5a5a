import { Pinecone } from '@pinecone-database/pinecone'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PineconeEmulator, startPineconeEmulator } from './server.js'

const API_KEY = 'emulator-test-key'

let emulator: PineconeEmulator
let pc: Pinecone

beforeAll(async () => {
  emulator = await startPineconeEmulator({
    apiKey: API_KEY,
    indexes: [
      { name: 'cosine-idx', dimension: 4, metric: 'cosine' },
      { name: 'euclid-idx', dimension: 2, metric: 'euclidean' },
      { name: 'dot-idx', dimension: 2, metric: 'dotproduct' },
    ],
  })
  pc = new Pinecone({ apiKey: API_KEY, controllerHostUrl: emulator.url, maxRetries: 0 })
})

afterAll(async () => {
  await emulator?.close()
})

function indexOf(name: string, namespace = '') {
  return pc.index({ host: emulator.hostOf(name), namespace })
}

describe('control plane', () => {
  it('describes, lists, creates and deletes indexes', async () => {
    const described = await pc.describeIndex('cosine-idx')
    expect(described).toMatchObject({ name: 'cosine-idx', dimension: 4, metric: 'cosine' })
    expect(described.host).toBe(emulator.hostOf('cosine-idx'))
    expect(described.status?.ready).toBe(true)

    await pc.createIndex({
      name: 'made-here',
      dimension: 3,
      metric: 'euclidean',
      spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
      waitUntilReady: true,
    })
    const names = (await pc.listIndexes()).indexes?.map((index) => index.name)
    expect(names).toContain('made-here')
    await expect(
      pc.createIndex({
        name: 'made-here',
        dimension: 3,
        spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
      }),
    ).rejects.toMatchObject({ name: 'PineconeConflictError' })
    await pc.deleteIndex('made-here')
    await expect(pc.describeIndex('made-here')).rejects.toMatchObject({
      name: 'PineconeNotFoundError',
    })
  })

  it('refuses a wrong API key with 401 and the service error body', async () => {
    const wrong = new Pinecone({ apiKey: 'wrong', controllerHostUrl: emulator.url, maxRetries: 0 })
    await expect(wrong.listIndexes()).rejects.toMatchObject({ name: 'PineconeAuthorizationError' })
    const response = await fetch(`${emulator.url}/indexes`, { headers: { 'Api-Key': 'wrong' } })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      error: { code: 'UNAUTHENTICATED', message: 'Invalid API Key' },
      status: 401,
    })
    const data = await fetch(`${emulator.hostOf('cosine-idx')}/vectors/list`, {
      headers: { 'Api-Key': 'wrong' },
    })
    expect(data.status).toBe(401)
    expect(await data.json()).toEqual({ code: 16, message: 'Invalid API Key', details: [] })
    const dataIndex = new Pinecone({ apiKey: 'wrong', maxRetries: 0 }).index({
      host: emulator.hostOf('cosine-idx'),
    })
    await expect(dataIndex.describeIndexStats()).rejects.toMatchObject({
      name: 'PineconeAuthorizationError',
    })
  })

  it('resolves the index host through describeIndex', async () => {
    const index = pc.index({ name: 'euclid-idx', namespace: 'via-name' })
    await index.upsert({ records: [{ id: 'a', values: [1, 2] }] })
    const fetched = await index.fetch({ ids: ['a'] })
    expect(fetched.records.a?.values).toEqual([1, 2])
  })
})

describe('data plane', () => {
  it('upserts, fetches (missing ids absent), and keeps float32 values', async () => {
    const index = indexOf('cosine-idx', 'fetch')
    await index.upsert({
      records: [
        { id: 'v1', values: [0.1, 0.2, 0.3, 0.4], metadata: { genre: 'drama', year: 2020 } },
        { id: 'v2', values: [1 / 3, 1, 2, 3], metadata: { tags: ['a', 'b'], ok: true } },
      ],
    })
    const fetched = await index.fetch({ ids: ['v1', 'v2', 'missing'] })
    expect(Object.keys(fetched.records).sort()).toEqual(['v1', 'v2'])
    expect(fetched.records.v1).toMatchObject({
      id: 'v1',
      values: [0.1, 0.2, 0.3, 0.4],
      metadata: { genre: 'drama', year: 2020 },
    })
    expect(fetched.records.v2?.values?.[0]).toBe(0.33333334)
    expect(fetched.records.v2?.metadata).toEqual({ tags: ['a', 'b'], ok: true })
  })

  it('queries with cosine, euclidean and dotproduct, topK, filter, include flags', async () => {
    const cosine = indexOf('cosine-idx', 'query')
    await cosine.upsert({
      records: [
        { id: 'x', values: [1, 0, 0, 0], metadata: { kind: 'x', n: 1 } },
        { id: 'y', values: [0, 1, 0, 0], metadata: { kind: 'y', n: 2 } },
        { id: 'xy', values: [1, 1, 0, 0], metadata: { kind: 'x', n: 3, tags: ['t1', 't2'] } },
      ],
    })
    const result = await cosine.query({ vector: [1, 0, 0, 0], topK: 2, includeMetadata: true })
    expect(result.matches.map((match) => match.id)).toEqual(['x', 'xy'])
    expect(result.matches[0]!.score).toBeCloseTo(1)
    expect(result.matches[1]!.score).toBeCloseTo(Math.SQRT1_2)
    expect(result.matches[0]!.metadata).toEqual({ kind: 'x', n: 1 })
    expect(result.matches[0]!.values).toEqual([])

    const filtered = await cosine.query({
      vector: [1, 0, 0, 0],
      topK: 10,
      filter: { $or: [{ n: { $gte: 3 } }, { kind: { $eq: 'y' } }] },
      includeValues: true,
    })
    expect(filtered.matches.map((match) => match.id).sort()).toEqual(['xy', 'y'])
    expect(filtered.matches.find((match) => match.id === 'xy')!.values).toEqual([1, 1, 0, 0])
    const listValued = await cosine.query({ id: 'x', topK: 10, filter: { tags: { $in: ['t2'] } } })
    expect(listValued.matches.map((match) => match.id)).toEqual(['xy'])
    const missingField = await cosine.query({
      id: 'x',
      topK: 10,
      filter: { tags: { $exists: false } },
    })
    expect(missingField.matches.map((match) => match.id).sort()).toEqual(['x', 'y'])
    const nin = await cosine.query({
      id: 'x',
      topK: 10,
      filter: { kind: { $nin: ['x'] }, n: { $lt: 5 } },
    })
    expect(nin.matches.map((match) => match.id)).toEqual(['y'])

    const euclid = indexOf('euclid-idx', 'query')
    await euclid.upsert({
      records: [
        { id: 'near', values: [1, 1] },
        { id: 'far', values: [5, 5] },
      ],
    })
    const byDistance = await euclid.query({ vector: [0, 0], topK: 2 })
    expect(byDistance.matches.map((match) => [match.id, match.score])).toEqual([
      ['near', 2],
      ['far', 50],
    ])

    const dot = indexOf('dot-idx', 'query')
    await dot.upsert({
      records: [
        { id: 'small', values: [1, 1], sparseValues: { indices: [7], values: [10] } },
        { id: 'big', values: [3, 3] },
      ],
    })
    const dense = await dot.query({ vector: [1, 1], topK: 2 })
    expect(dense.matches.map((match) => [match.id, match.score])).toEqual([
      ['big', 6],
      ['small', 2],
    ])
    const hybrid = await dot.query({
      vector: [1, 1],
      sparseVector: { indices: [7], values: [1] },
      topK: 1,
      includeValues: true,
    })
    expect(hybrid.matches[0]).toMatchObject({
      id: 'small',
      score: 12,
      sparseValues: { indices: [7], values: [10] },
    })
  })

  it('lists ids page by page in byte order, with a prefix', async () => {
    const index = indexOf('euclid-idx', 'listing')
    const ids = Array.from({ length: 250 }, (_, i) => `doc-${String(i).padStart(3, '0')}`)
    ids.push('other-1', 'Z-upper', 'é-accent', '\u{1F600}-emoji', '\uFF21-fullwidth')
    for (let start = 0; start < ids.length; start += 100) {
      await index.upsert({
        records: ids.slice(start, start + 100).map((id) => ({ id, values: [1, 2] })),
      })
    }
    const seen: string[] = []
    let token: string | undefined
    let pages = 0
    do {
      const page = await index.listPaginated({
        limit: 40,
        ...(token ? { paginationToken: token } : {}),
      })
      pages++
      seen.push(...(page.vectors ?? []).map((item) => item.id!))
      token = page.pagination?.next
    } while (token)
    expect(pages).toBe(Math.ceil(ids.length / 40))
    const byteOrder = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect(seen).toEqual(byteOrder)

    const prefixed: string[] = []
    token = undefined
    do {
      const page = await index.listPaginated({
        prefix: 'doc-1',
        ...(token ? { paginationToken: token } : {}),
      })
      prefixed.push(...(page.vectors ?? []).map((item) => item.id!))
      token = page.pagination?.next
    } while (token)
    expect(prefixed).toEqual(ids.filter((id) => id.startsWith('doc-1')))
    const last = await index.listPaginated({ prefix: 'other' })
    expect(last.pagination).toBeUndefined()
    expect(last.vectors?.map((item) => item.id)).toEqual(['other-1'])
  })

  it('deletes by ids, by filter and all; reports stats and namespaces', async () => {
    const index = indexOf('dot-idx', 'deletes')
    await index.upsert({
      records: Array.from({ length: 10 }, (_, i) => ({
        id: `d${i}`,
        values: [i + 1, 1],
        metadata: { even: i % 2 === 0 },
      })),
    })
    await index.deleteMany({ ids: ['d0', 'd1'] })
    await index.deleteMany({ filter: { even: { $eq: true } } })
    const left = await index.listPaginated()
    expect(left.vectors?.map((item) => item.id)).toEqual(['d3', 'd5', 'd7', 'd9'])
    const stats = await index.describeIndexStats()
    expect(stats.namespaces?.deletes?.recordCount).toBe(4)
    expect(stats.dimension).toBe(2)
    const filteredStats = await index.describeIndexStats({ filter: { even: { $eq: false } } })
    expect(filteredStats.namespaces?.deletes?.recordCount).toBe(4)
    const namespaces = await index.listNamespaces()
    expect(namespaces.namespaces?.map((ns) => ns.name)).toContain('deletes')
    expect((await index.describeNamespace('deletes')).recordCount).toBe(4)
    await index.deleteAll()
    expect((await index.describeIndexStats()).namespaces?.deletes).toBeUndefined()
    await index.upsert({ records: [{ id: 'again', values: [1, 1] }] })
    await index.deleteNamespace('deletes')
    expect((await index.listPaginated()).vectors).toEqual([])
  })
})

describe('service rules', () => {
  async function rawUpsert(body: unknown) {
    const response = await fetch(`${emulator.hostOf('cosine-idx')}/vectors/upsert`, {
      method: 'POST',
      headers: { 'Api-Key': API_KEY, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: response.status, body: (await response.json()) as any }
  }

  it('refuses a wrong dimension with 400 and the gRPC error body', async () => {
    const { status, body } = await rawUpsert({
      vectors: [{ id: 'a', values: [1, 2, 3] }],
      namespace: 'r',
    })
    expect(status).toBe(400)
    expect(body).toEqual({
      code: 3,
      message: 'Vector dimension 3 does not match the dimension of the index 4',
      details: [],
    })
    await expect(
      indexOf('cosine-idx', 'r').upsert({ records: [{ id: 'a', values: [1, 2, 3] }] }),
    ).rejects.toMatchObject({ name: 'PineconeBadRequestError' })
  })

  it('refuses more than 1000 vectors and bodies over 2 MB, storing nothing', async () => {
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ id: `m${i}`, values: [1, 0, 0, 0] }))
    const many = await rawUpsert({ vectors: tooMany, namespace: 'limits' })
    expect(many.status).toBe(400)
    expect(many.body.code).toBe(3)
    expect(many.body.message).toMatch(/1001 vectors.*1000/)

    const big = Array.from({ length: 10 }, (_, i) => ({
      id: `b${i}`,
      values: [1, 0, 0, 0],
      metadata: { text: 'x'.repeat(39_000) },
    }))
    // ~390 KB: fine. Fifty-five of them: over 2 MiB.
    expect((await rawUpsert({ vectors: big, namespace: 'limits' })).status).toBe(200)
    const huge = Array.from({ length: 55 }, (_, i) => ({ ...big[0]!, id: `h${i}` }))
    const tooBig = await rawUpsert({ vectors: huge, namespace: 'limits' })
    expect(tooBig.status).toBe(413)
    expect(tooBig.body.message).toMatch(/larger than the maximum supported size - 2MB/)
    const stats = await indexOf('cosine-idx', 'limits').describeIndexStats()
    expect(stats.namespaces?.limits?.recordCount).toBe(10)
    expect(
      emulator.requests.some(
        (request) => request.status === 413 && request.bytes > 2 * 1024 * 1024,
      ),
    ).toBe(true)
  })

  it('checks metadata types, sparse lengths, id length and zero vectors', async () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 'm', values: [1, 0, 0, 0], metadata: { bad: null } }, /got 'null' for field 'bad'/],
      [{ id: 'm', values: [1, 0, 0, 0], metadata: { bad: { nested: 1 } } }, /got 'struct'/],
      [{ id: 'm', values: [1, 0, 0, 0], metadata: { bad: [1, 2] } }, /list of strings/],
      [
        { id: 'm', values: [1, 0, 0, 0], metadata: { big: 'x'.repeat(41_000) } },
        /exceeds the limit of 40960/,
      ],
      [
        { id: 's', values: [1, 0, 0, 0], sparseValues: { indices: [1, 2], values: [0.5] } },
        /same length/,
      ],
      [{ id: 'i'.repeat(513), values: [1, 0, 0, 0] }, /512 characters or less/],
      [{ id: 'z', values: [0, 0, 0, 0] }, /at least one non-zero value/],
      [{ id: 'n', values: [1, 0, 0, 'x'] }, /finite numbers/],
    ]
    for (const [vector, message] of cases) {
      const { status, body } = await rawUpsert({
        vectors: [{ id: 'fine', values: [1, 1, 1, 1] }, vector],
      })
      expect(status, JSON.stringify(vector).slice(0, 80)).toBe(400)
      expect(body.message).toMatch(message)
    }
    // The valid companion of each bad request was not stored: a request is all or nothing.
    const fetched = await indexOf('cosine-idx').fetch({ ids: ['fine'] })
    expect(fetched.records).toEqual({})
    expect(
      (await rawUpsert({ vectors: [{ id: 'i'.repeat(512), values: [1, 0, 0, 0] }] })).status,
    ).toBe(200)
  })

  it('answers injected faults with the status, body and Retry-After', async () => {
    emulator.failNext({ status: 429, path: '/vectors/upsert', retryAfterSeconds: 3 })
    const first = await rawUpsert({ vectors: [{ id: 'q', values: [1, 0, 0, 0] }] })
    expect(first.status).toBe(429)
    expect(first.body.code).toBe(8)
    expect((await rawUpsert({ vectors: [{ id: 'q', values: [1, 0, 0, 0] }] })).status).toBe(200)
    emulator.failNext({ status: 503, times: 2 })
    // The SDK turns a 5xx into PineconeMaxRetriesExceededError once its retries are spent.
    await expect(indexOf('cosine-idx').describeIndexStats()).rejects.toMatchObject({
      name: 'PineconeMaxRetriesExceededError',
    })
    const raw = await fetch(`${emulator.hostOf('cosine-idx')}/describe_index_stats`, {
      method: 'POST',
      headers: { 'Api-Key': API_KEY },
    })
    expect(raw.status).toBe(503)
    expect(((await raw.json()) as any).code).toBe(14)
    await expect(indexOf('cosine-idx').describeIndexStats()).resolves.toBeDefined()
  })
})
