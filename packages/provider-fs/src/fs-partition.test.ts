import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type BlobData,
  type DocumentData,
  type GuardedConnection,
  silentLogger,
} from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTo, readAll, tempRoot } from './__fixtures__/helpers.js'
import { partitionBlobs } from './fs-partition.js'
import type { FsBlobStream, FsDocumentStream, FsStream } from './fs-schemas.js'

let root: string
let cleanup: () => Promise<void>
let connection: GuardedConnection

beforeAll(async () => {
  ;({ root, cleanup } = await tempRoot('partition'))
  connection = await connectTo(root)
})
afterAll(async () => {
  await connection.close()
  await cleanup()
})

/** A JSON round trip, as a stored plan or checkpoint is. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

async function put(key: string, text = key): Promise<void> {
  const path = join(root, key)
  await mkdir(join(path, '..'), { recursive: true })
  await writeFile(path, text)
}

const keyOf = (data: unknown) =>
  (data as BlobData).kind === 'blob' ? (data as BlobData).key : (data as DocumentData).id

async function keys(stream: FsStream, after?: unknown): Promise<string[]> {
  return (await readAll(connection, viaJson(stream), after)).map((item) => keyOf(item.data))
}

/** Each partition's keys; fails on a key read by two partitions. */
async function readPartitions(partitions: FsStream[]): Promise<string[][]> {
  const parts: string[][] = []
  for (const partition of partitions) parts.push(await keys(partition))
  const owner = new Map<string, number>()
  parts.forEach((part, p) => {
    for (const key of part) {
      expect(owner.get(key), `${key} read by partitions ${owner.get(key)} and ${p}`).toBeUndefined()
      owner.set(key, p)
    }
  })
  return parts
}

async function plan<T extends FsStream>(stream: T, count: number) {
  return viaJson(await connection.partition(stream, { count })) as {
    partitions: T[]
    reason?: string
  }
}

describe('blob partitions', () => {
  it('split a skewed tree into even key ranges that together read it exactly', async () => {
    // One folder holds 180 of 200 files; byte order puts "a-b" between "a.b" and "a/".
    for (let i = 0; i < 180; i++) await put(`tree/big/${String(i).padStart(3, '0')}.txt`)
    for (const key of [
      'tree/a-b',
      'tree/a.b',
      'tree/a/x',
      'tree/ab/c',
      'tree/\u{FF5E}.txt',
      'tree/\u{1F600}.txt',
    ])
      await put(key)
    for (let i = 0; i < 14; i++) await put(`tree/small/${i}/f`)
    const stream: FsBlobStream = { kind: 'blob', prefix: 'tree/' }
    const { partitions, reason } = await plan(stream, 4)
    expect(reason).toBeUndefined()
    expect(partitions).toHaveLength(4)
    expect(partitions[0]!.range?.after).toBeUndefined()
    expect(partitions[3]!.range?.through).toBeUndefined()
    const parts = await readPartitions(partitions)
    expect(parts.map((p) => p.length)).toEqual([50, 50, 50, 50])
    expect(parts.flat()).toEqual(await keys(stream))
  })

  it('a file added while the partitions are read belongs to the one range that holds its key', async () => {
    for (let i = 0; i < 40; i++) await put(`grow/${String(i * 10).padStart(4, '0')}`)
    const stream: FsBlobStream = { kind: 'blob', prefix: 'grow/' }
    const { partitions } = await plan(stream, 4)
    // Each partition reads its first 3 files, then files land ahead of every position and
    // past the end; the rest of each partition (resumed from its context) has each once.
    const seen = new Map<string, number>()
    const heads: string[][] = []
    for (const partition of partitions) heads.push((await keys(partition)).slice(0, 3))
    for (let i = 0; i < 40; i++) await put(`grow/${String(i * 10 + 5).padStart(4, '0')}`)
    await put('grow/9999')
    for (const [p, partition] of partitions.entries()) {
      const head = heads[p]!
      const rest = await keys(partition, { key: head[head.length - 1] })
      for (const key of [...head, ...rest]) {
        expect(seen.get(key), `${key} read twice`).toBeUndefined()
        seen.set(key, p)
      }
    }
    expect(seen.get('grow/9999')).toBe(3)
    // Every file is read by the range that holds it, except new ones that landed behind that
    // partition's position (no keyset read sees those, partitioned or not).
    const byteCompare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
    const expected = new Map<string, number>()
    for (const key of await keys(stream)) {
      const owners = partitions
        .map((partition, p) => ({ range: partition.range ?? {}, p }))
        .filter(
          ({ range }) =>
            (range.after === undefined || byteCompare(key, range.after) > 0) &&
            (range.through === undefined || byteCompare(key, range.through) <= 0),
        )
      expect(owners, key).toHaveLength(1)
      const { p } = owners[0]!
      const isNew = Number(key.slice(5)) % 10 !== 0
      if (isNew && byteCompare(key, heads[p]![2]!) < 0) continue
      expected.set(key, p)
    }
    expect([...seen.entries()].sort()).toEqual([...expected.entries()].sort())
    // 40 files, 41 new: 2 land behind the first partition's position, 3 behind each other's.
    expect(seen.size).toBe(40 + 41 - 2 - 3 * 3)
  })

  it('an empty stream is one partition with a reason; fewer files than partitions give one each', async () => {
    await mkdir(join(root, 'nothing'), { recursive: true })
    const empty = await plan({ kind: 'blob', prefix: 'nothing/' }, 4)
    expect(empty.partitions).toEqual([{ kind: 'blob', prefix: 'nothing/' }])
    expect(empty.reason).toMatch(/no file/)
    for (const key of ['few/a', 'few/b', 'few/c']) await put(key)
    const few = await plan({ kind: 'blob', prefix: 'few/' }, 8)
    expect(few.reason).toBe('3 files: 3 partitions')
    expect(await readPartitions(few.partitions)).toEqual([['few/a'], ['few/b'], ['few/c']])
  })

  it('keeps the glob, splits a partition again, and stays even with the key sample thinned', async () => {
    for (let i = 0; i < 100; i++)
      await put(`mixed/${String(i).padStart(3, '0')}.${i % 2 ? 'md' : 'txt'}`)
    const globbed: FsBlobStream = { kind: 'blob', prefix: 'mixed/', glob: '**/*.md' }
    const parts = await readPartitions((await plan(globbed, 3)).partitions)
    expect(parts.flat()).toEqual(await keys(globbed))
    expect(parts.flat()).toHaveLength(50)

    const mixed: FsBlobStream = { kind: 'blob', prefix: 'mixed/' }
    const [first] = (await plan(mixed, 2)).partitions
    const sub = await plan(first!, 3)
    expect(sub.partitions[0]!.range?.after).toBeUndefined()
    expect(sub.partitions[2]!.range?.through).toBe(first!.range!.through)
    expect((await readPartitions(sub.partitions)).flat()).toEqual(await keys(first!))

    // At most 40 keys held: past that every other one is dropped and every 4th file kept; the
    // shares stay within two strides of even.
    const real = (await import('node:fs/promises')).realpath(root)
    const thinned = await partitionBlobs(
      await real,
      { kind: 'blob', prefix: 'mixed/' },
      4,
      new AbortController().signal,
      silentLogger,
      40,
    )
    const thinnedParts = await readPartitions(thinned.partitions)
    expect(thinnedParts.flat()).toEqual(await keys({ kind: 'blob', prefix: 'mixed/' }))
    expect(thinnedParts).toHaveLength(4)
    for (const part of thinnedParts) expect(Math.abs(part.length - 25)).toBeLessThanOrEqual(8)
  })
})

describe('JSON Lines partitions', () => {
  const line = (n: number, pad = 10) =>
    JSON.stringify({ id: `d${String(n).padStart(4, '0')}`, text: 'x'.repeat(pad) })

  it('split a file into line ranges with exact line numbers; each resumes from its contexts', async () => {
    // Blank lines and a "\r\n" line in between: they count as lines, hold no document.
    const lines = Array.from({ length: 100 }, (_, n) =>
      n % 17 === 5 ? '' : line(n, n % 7 === 0 ? 400 : 10),
    )
    lines[40] = `${line(40)}\r`
    await mkdir(join(root, 'docs'), { recursive: true })
    await writeFile(join(root, 'docs/a.jsonl'), `${lines.join('\n')}\n`)
    const stream: FsDocumentStream = { kind: 'document', file: 'docs/a.jsonl' }
    const whole = await readAll(connection, stream)
    const { partitions } = await plan(stream, 4)
    expect(partitions).toHaveLength(4)
    const parts = await readPartitions(partitions)
    expect(parts.flat()).toEqual(whole.map((item) => keyOf(item.data)))
    // Contexts in a partition are the same as in the whole read: line numbers are absolute.
    const second = await readAll(connection, viaJson(partitions[1]!))
    const inWhole = whole.slice(parts[0]!.length, parts[0]!.length + parts[1]!.length)
    expect(second.map((item) => item.context)).toEqual(inWhole.map((item) => item.context))
    const rest = await readAll(connection, viaJson(partitions[1]!), viaJson(second[0]!.context))
    expect(rest.map((item) => keyOf(item.data))).toEqual(parts[1]!.slice(1))
  })

  it('lines appended after planning go to the last partition; one long line leaves fewer ranges', async () => {
    await writeFile(
      join(root, 'docs/b.jsonl'),
      `${[1, 2, 3, 4, 5, 6].map((n) => line(n)).join('\n')}\n`,
    )
    const stream: FsDocumentStream = { kind: 'document', file: 'docs/b.jsonl' }
    const { partitions } = await plan(stream, 3)
    expect(partitions).toHaveLength(3)
    await appendFile(join(root, 'docs/b.jsonl'), `${line(7)}\n${line(8)}\n`)
    const parts = await readPartitions(partitions)
    expect(parts[2]!.slice(-2)).toEqual(['d0007', 'd0008'])
    expect(parts.flat()).toEqual([
      'd0001',
      'd0002',
      'd0003',
      'd0004',
      'd0005',
      'd0006',
      'd0007',
      'd0008',
    ])

    await writeFile(join(root, 'docs/c.jsonl'), `${line(1, 100_000)}\n${line(2)}\n`)
    const long = await plan({ kind: 'document', file: 'docs/c.jsonl' }, 4)
    expect(long.partitions.length).toBeLessThan(4)
    expect(long.reason).toMatch(/2 lines/)
    expect((await readPartitions(long.partitions)).flat()).toEqual(['d0001', 'd0002'])

    await writeFile(join(root, 'docs/empty.jsonl'), '')
    const empty = await plan({ kind: 'document', file: 'docs/empty.jsonl' }, 4)
    expect(empty.partitions).toEqual([{ kind: 'document', file: 'docs/empty.jsonl' }])
    expect(empty.reason).toMatch(/no lines/)
  })
})
