import { appendFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DocumentData } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTo, failure, readAll, signal, tempRoot } from './__fixtures__/helpers.js'

let root: string
let cleanup: () => Promise<void>
beforeAll(async () => {
  ;({ root, cleanup } = await tempRoot('documents'))
})
afterAll(() => cleanup())

const ids = (items: { data: unknown }[]) => items.map((i) => (i.data as DocumentData).id)

describe('document reads', () => {
  // Multi-byte characters, a CRLF line, a blank line and a numeric id.
  const text = [
    '{"id":"a","text":"naïve ✓"}',
    '{"id":"b","text":"\u{1F600}"}\r',
    '',
    '   ',
    '{"id":7,"nested":{"x":[1,2]}}',
    '{"id":"d"}',
  ].join('\n')

  beforeAll(async () => {
    await writeFile(join(root, 'read.jsonl'), `${text}\n`)
  })

  it('yields each line with its line number and the byte offset after it', async () => {
    const connection = await connectTo(root)
    const items = await readAll(connection, { kind: 'document', file: 'read.jsonl' })
    expect(ids(items)).toEqual(['a', 'b', '7', 'd'])
    const bytes = await readFile(join(root, 'read.jsonl'))
    const lineEnds: number[] = []
    bytes.forEach((byte, i) => {
      if (byte === 0x0a) lineEnds.push(i + 1)
    })
    expect(items.map((i) => i.context)).toEqual([
      { line: 1, offset: lineEnds[0] },
      { line: 2, offset: lineEnds[1] },
      { line: 5, offset: lineEnds[4] },
      { line: 6, offset: lineEnds[5] },
    ])
    expect((items[2]!.data as DocumentData).content).toEqual({ id: 7, nested: { x: [1, 2] } })
  })

  it('resumes after every position with exactly the rest', async () => {
    const connection = await connectTo(root)
    const stream = { kind: 'document', file: 'read.jsonl' }
    const all = await readAll(connection, stream)
    for (let k = 0; k < all.length; k++) {
      const rest = await readAll(connection, stream, all[k]!.context)
      expect(ids(rest)).toEqual(ids(all.slice(k + 1)))
    }
  })

  it('reads lines across 256 KiB chunk boundaries exactly: multi-byte characters split by a boundary, lines longer than a chunk, a byte order mark', async () => {
    // Line lengths chosen so that many lines, and characters of 2, 3 and 4 bytes, straddle
    // the reader's 256 KiB chunks; two lines are longer than a chunk.
    const lines: string[] = []
    let i = 0
    let total = 3
    while (total < 3 * 256 * 1024) {
      const filler =
        i % 97 === 0 ? 'é✓\u{1F600}'.repeat(30_000) : `é✓\u{1F600}`.repeat(1 + (i % 40))
      const line = JSON.stringify({ id: `c${i}`, n: i, text: filler })
      lines.push(line)
      total += Buffer.byteLength(line) + 1
      i++
    }
    const file = `\uFEFF${lines.join('\n')}\n`
    await writeFile(join(root, 'chunks.jsonl'), file)
    const connection = await connectTo(root)
    const items = await readAll(connection, { kind: 'document', file: 'chunks.jsonl' })
    expect(items.map((item) => (item.data as DocumentData).content)).toEqual(
      lines.map((line) => JSON.parse(line)),
    )
    // Offsets are byte offsets (the BOM counts), sizes the line's bytes (the BOM does not).
    let offset = 3
    items.forEach((item, index) => {
      const bytes = Buffer.byteLength(lines[index]!)
      offset += bytes + 1
      expect(item.context).toEqual({ line: index + 1, offset })
      expect((item.data as DocumentData).size).toBe(bytes)
    })
    // A resume from the middle gives exactly the rest.
    const middle = Math.floor(items.length / 2)
    const rest = await readAll(
      connection,
      { kind: 'document', file: 'chunks.jsonl' },
      items[middle]!.context,
    )
    expect(ids(rest)).toEqual(lines.slice(middle + 1).map((line) => JSON.parse(line).id))
  })

  it('picks up appended lines, and a last line once it is complete', async () => {
    const path = join(root, 'grow.jsonl')
    await writeFile(path, '{"id":"1"}\n{"id":"2"}')
    const connection = await connectTo(root)
    const stream = { kind: 'document', file: 'grow.jsonl', idField: 'id' }
    // A last line without "\n" that is a whole object is read.
    const first = await readAll(connection, stream)
    expect(ids(first)).toEqual(['1', '2'])
    const last = first[1]!.context
    // A writer adds the newline and a half-written line: nothing new yet.
    await appendFile(path, '\n{"id":"3","te')
    expect(ids(await readAll(connection, stream, last))).toEqual([])
    await appendFile(path, 'xt":"done"}\n{"id":"4"}\n')
    const fresh = await readAll(connection, stream, last)
    expect(ids(fresh)).toEqual(['3', '4'])
    expect(fresh[0]!.context).toMatchObject({ line: 3 })
  })

  it('reports a bad line as a data error naming the line', async () => {
    await writeFile(join(root, 'bad.jsonl'), '{"id":"1"}\n{oops\n{"id":"3"}\n')
    await writeFile(join(root, 'noid.jsonl'), '{"id":"1"}\n{"name":"x"}\n')
    await writeFile(join(root, 'array.jsonl'), '[1,2]\n')
    const connection = await connectTo(root)
    const bad = await failure(readAll(connection, { kind: 'document', file: 'bad.jsonl' }))
    expect(bad.kind).toBe('data')
    expect(bad.message).toContain('bad.jsonl:2')
    expect(bad.cursor).toEqual({ line: 1, offset: 11 })
    const noId = await failure(readAll(connection, { kind: 'document', file: 'noid.jsonl' }))
    expect(noId.kind).toBe('data')
    expect(noId.message).toContain('noid.jsonl:2')
    expect(
      (await failure(readAll(connection, { kind: 'document', file: 'array.jsonl' }))).kind,
    ).toBe('data')
  })

  it('keeps the text of numbers JSON.parse changes (rawJson), and only of those fields', async () => {
    const lines = [
      '{"id":"x1","n":12345678901234567890123,"inf":1e400,"tiny":-1e-400,"d":0.1000000000000000055511151231257827,"ok":2.5,"o":{"k":[9007199254740993,"s"]},"t":"12345678901234567890"}',
      '{"id":"x2","n":1,"t":"no numbers to keep: 12345678901234567890, 1e400"}',
      // Number ids past 2^53 stay distinct: JSON.parse makes both 9007199254740992.
      '{"id":9007199254740993,"v":1}',
      '{"id":9007199254740992,"v":2}',
      // A repeated key reads as JSON.parse reads it: the last value wins, at the first place.
      '{"id":"x5","r":1e400,"s":0,"r":7}',
      '{"id":"x6","r":7,"s":0,"r":1e400}',
    ]
    await writeFile(join(root, 'exact.jsonl'), `${lines.join('\n')}\n`)
    const connection = await connectTo(root)
    const items = (await readAll(connection, { kind: 'document', file: 'exact.jsonl' })).map(
      (item) => item.data as DocumentData,
    )
    expect(items.map((item) => [item.id, item.rawJson])).toEqual([
      [
        'x1',
        {
          n: '12345678901234567890123',
          inf: '1e400',
          tiny: '-1e-400',
          d: '0.1000000000000000055511151231257827',
          o: '{"k":[9007199254740993,"s"]}',
        },
      ],
      ['x2', undefined],
      ['9007199254740993', { id: '9007199254740993' }],
      ['9007199254740992', undefined],
      ['x5', undefined],
      ['x6', { r: '1e400' }],
    ])
    // content is JSON.parse's value, as before.
    expect(items.map((item) => item.content)).toEqual(lines.map((line) => JSON.parse(line)))

    // Written back by the JSONL sink, every line is the line that was read, byte for byte
    // (the repeated keys as JSON.parse read them).
    const result = await connection.write({ kind: 'document', file: 'exact-copy.jsonl' }, items, {
      signal: signal(),
    })
    expect(result).toEqual({ written: 6, failed: [] })
    expect(await readFile(join(root, 'exact-copy.jsonl'), 'utf8')).toBe(
      [...lines.slice(0, 4), '{"id":"x5","r":7,"s":0}', '{"id":"x6","r":1e400,"s":0}', ''].join(
        '\n',
      ),
    )
  })

  it('fails a resume past the end of a truncated file as data', async () => {
    await writeFile(join(root, 'shrunk.jsonl'), '{"id":"1"}\n')
    const connection = await connectTo(root)
    const error = await failure(
      readAll(connection, { kind: 'document', file: 'shrunk.jsonl' }, { line: 9, offset: 500 }),
    )
    expect(error.kind).toBe('data')
  })

  it('refuses files outside the root as config, a missing file as not_found', async () => {
    const { root: outside, cleanup: done } = await tempRoot('doc-outside')
    await writeFile(join(outside, 'x.jsonl'), '{"id":"secret"}\n')
    await symlink(join(outside, 'x.jsonl'), join(root, 'link.jsonl'))
    const connection = await connectTo(root)
    for (const file of ['../x.jsonl', join(outside, 'x.jsonl'), 'link.jsonl', 'a/../../x.jsonl']) {
      const error = await failure(readAll(connection, { kind: 'document', file }))
      expect(error.kind, file).toBe('config')
      expect(error.issues?.[0]?.path, file).toBe('/stream/file')
    }
    const notJsonl = await failure(readAll(connection, { kind: 'document', file: 'x.txt' }))
    expect(notJsonl.issues?.[0]?.path).toBe('/stream/file')
    const missing = await failure(readAll(connection, { kind: 'document', file: 'missing.jsonl' }))
    expect(missing.kind).toBe('not_found')
    const wrongContext = await failure(
      readAll(connection, { kind: 'document', file: 'read.jsonl' }, { key: 'a' }),
    )
    expect(wrongContext.kind).toBe('config')
    await done()
  })
})

describe('document writes', () => {
  const doc = (id: string, content: Record<string, unknown> = {}): DocumentData => ({
    kind: 'document',
    id,
    content: content as DocumentData['content'],
  })

  it('appends each id once, across batches, within a batch and across connections', async () => {
    const stream = { kind: 'document', file: 'out/w1.jsonl' }
    const one = await connectTo(root)
    const two = await connectTo(root)
    const batch = [doc('a', { n: 1 }), doc('b', { n: 2 }), doc('a', { n: 3 })]
    expect(await one.write(stream, batch, { signal: signal() })).toEqual({ written: 3, failed: [] })
    expect(await one.write(stream, batch, { signal: signal() })).toEqual({ written: 3, failed: [] })
    // Another connection indexes the file before its first append.
    await two.write(stream, [doc('b'), doc('c', { n: 4 })], { signal: signal() })
    // And the first connection sees what the second appended.
    await one.write(stream, [doc('c'), doc('d')], { signal: signal() })
    const lines = (await readFile(join(root, 'out/w1.jsonl'), 'utf8')).trimEnd().split('\n')
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
      { id: 'c', n: 4 },
      { id: 'd' },
    ])
    // What a sink wrote, a source reads back, and resumes.
    const read = await readAll(one, stream)
    expect(ids(read)).toEqual(['a', 'b', 'c', 'd'])
    expect(ids(await readAll(one, stream, read[1]!.context))).toEqual(['c', 'd'])
  })

  it('fails a document alone when its content disagrees with its id or is not JSON', async () => {
    const connection = await connectTo(root)
    const stream = { kind: 'document', file: 'w2.jsonl', idField: 'key' }
    const result = await connection.write(
      stream,
      [
        doc('1', { key: '1' }),
        doc('2', { key: 'other' }),
        doc('3', { big: 1n as unknown }),
        doc('4', { key: 4 }),
      ],
      { signal: signal() },
    )
    expect(result.written).toBe(2)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [2, 'data'],
    ])
    expect(ids(await readAll(connection, stream))).toEqual(['1', '4'])
  })

  it('writes fields with exact JSON text (rawJson) verbatim: repeated keys, big numbers, one line', async () => {
    const connection = await connectTo(root)
    const stream = { kind: 'document', file: 'w5.jsonl' }
    const raw = '{"b":1,"a":2,"b":3,"n":12345678901234567890123,\n "x":1e400,"d":2.50}'
    const item: DocumentData = {
      kind: 'document',
      id: 'r1',
      content: { j: JSON.parse(raw), t: 'text' },
      rawJson: { j: raw },
    }
    const result = await connection.write(stream, [item, doc('r2', { n: 2 })], {
      signal: signal(),
    })
    expect(result).toEqual({ written: 2, failed: [] })
    expect(await readFile(join(root, 'w5.jsonl'), 'utf8')).toBe(
      `{"id":"r1","j":${raw.replace('\n', ' ')},"t":"text"}\n{"id":"r2","n":2}\n`,
    )
    // The file reads back as two documents (the repeated key as JavaScript parses it).
    expect(ids(await readAll(connection, stream))).toEqual(['r1', 'r2'])
  })

  it('truncates a torn last line before appending, and ends a hand-written last line first', async () => {
    const connection = await connectTo(root)
    await writeFile(join(root, 'w3.jsonl'), '{"id":"1"}\n{"id":"2","te')
    await connection.write({ kind: 'document', file: 'w3.jsonl' }, [doc('3')], { signal: signal() })
    expect(await readFile(join(root, 'w3.jsonl'), 'utf8')).toBe('{"id":"1"}\n{"id":"3"}\n')
    await writeFile(join(root, 'w4.jsonl'), '{"id":"1"}')
    await connection.write({ kind: 'document', file: 'w4.jsonl' }, [doc('1'), doc('2')], {
      signal: signal(),
    })
    expect(await readFile(join(root, 'w4.jsonl'), 'utf8')).toBe('{"id":"1"}\n{"id":"2"}\n')
  })

  it('refuses a file outside the root as config', async () => {
    await mkdir(join(root, 'sub'), { recursive: true })
    const connection = await connectTo(root)
    const error = await failure(
      connection.write({ kind: 'document', file: 'sub/../../x.jsonl' }, [doc('1')], {
        signal: signal(),
      }),
    )
    expect(error.kind).toBe('config')
    expect(error.issues?.[0]?.path).toBe('/stream/file')
  })
})
