import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BlobData, DocumentData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import { fsProvider } from './index.js'

const root = await mkdtemp(join(tmpdir(), 'nvisy-fs-conformance-'))
const pad = (i: number) => String(i).padStart(6, '0')
/** Item i in a nested tree (ten per folder), so the walk crosses folders in key order. */
const blobKey = (i: number) => `g${String(Math.floor(i / 10)).padStart(3, '0')}/item ${pad(i)}.txt`
const itemOfKey = (key: string) => Number(/item (\d{6})\.txt$/.exec(key)![1])

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])
  return entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name)
}

const badParams = { input: { credentials: {}, params: { root: 42 } }, path: '/params/root' }

runProviderConformance({
  name: 'fs (blob)',
  provider: fsProvider,
  input: () => ({ credentials: {}, params: { root } }),
  badParams,
  fixture: {
    stream: { kind: 'blob', prefix: 'blob-source/' },
    async clear() {
      await rm(join(root, 'blob-source'), { recursive: true, force: true })
      await rm(join(root, 'blob-sink'), { recursive: true, force: true })
    },
    async seed(from, count) {
      for (let i = from; i < from + count; i++) {
        const path = join(root, 'blob-source', blobKey(i))
        await mkdir(join(path, '..'), { recursive: true })
        await writeFile(path, `item ${i}\n`)
      }
    },
    itemNumber: (data) => itemOfKey((data as BlobData).key),
    sink: {
      stream: { kind: 'blob', prefix: 'blob-sink/' },
      makeItem: (i): BlobData => ({
        kind: 'blob',
        key: blobKey(i),
        body: Buffer.from(`item ${i}\n`),
        contentType: 'text/plain',
      }),
      makeBadItem: (): BlobData => ({ kind: 'blob', key: '../escape.txt', body: Buffer.from('x') }),
      storedItems: async () => (await filesUnder(join(root, 'blob-sink'))).map(itemOfKey),
    },
  },
})

runProviderConformance({
  name: 'fs (document)',
  provider: fsProvider,
  input: () => ({ credentials: {}, params: { root } }),
  badParams,
  fixture: {
    stream: { kind: 'document', file: 'documents/source.jsonl' },
    async setup() {
      await mkdir(join(root, 'documents'), { recursive: true })
    },
    async teardown() {
      await rm(root, { recursive: true, force: true })
    },
    async clear() {
      await writeFile(join(root, 'documents/source.jsonl'), '')
      await rm(join(root, 'documents/out'), { recursive: true, force: true })
    },
    async seed(from, count) {
      const lines = Array.from({ length: count }, (_, k) =>
        JSON.stringify({ id: `item-${pad(from + k)}`, n: from + k, text: `línea ${from + k}` }),
      )
      await writeFile(join(root, 'documents/source.jsonl'), `${lines.join('\n')}\n`, { flag: 'a' })
    },
    itemNumber: (data) => (data as DocumentData).content.n as number,
    sink: {
      stream: { kind: 'document', file: 'documents/out/sink.jsonl' },
      makeItem: (i): DocumentData => ({
        kind: 'document',
        id: `item-${pad(i)}`,
        content: { n: i },
      }),
      // Its content names another id than the document's own.
      makeBadItem: (): DocumentData => ({
        kind: 'document',
        id: 'bad',
        content: { id: 'other', n: -1 },
      }),
      storedItems: async () => {
        const text = await readFile(join(root, 'documents/out/sink.jsonl'), 'utf8').catch(() => '')
        return text
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line).n as number)
      },
    },
  },
})
