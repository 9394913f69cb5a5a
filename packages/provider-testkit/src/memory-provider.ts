import {
  type DocumentData,
  defineProvider,
  type JsonObject,
  ProviderError,
  Secret,
  SPECIFICATION_VERSION,
  sleep,
  Type,
  type WriteResult,
} from '@nvisy/provider-core'
import { VERSION } from './version.js'

/**
 * An in-memory document provider: a reference implementation of the contract, for tests
 * of the kit itself and of runtimes. `bug` turns on one deliberate contract violation, so
 * the kit's own tests can prove that it catches each one.
 */
export type MemoryProviderBug =
  | 'repeat-on-resume'
  | 'skip-on-resume'
  | 'not-idempotent'
  | 'leaks-password'
  | 'ignores-abort'
  | 'overlapping-partitions'
  | 'closed-last-partition'
  | 'partition-resume-escapes'

export interface MemoryStore {
  /** Source documents, kept sorted by id. */
  source: DocumentData[]
  /** Documents written, in write order (a non-idempotent sink keeps duplicates here). */
  sink: DocumentData[]
}

/** Stores by name, shared by every connection in this process. */
export const memoryStores = new Map<string, MemoryStore>()

export function memoryStore(name: string): MemoryStore {
  let store = memoryStores.get(name)
  if (!store) {
    store = { source: [], sink: [] }
    memoryStores.set(name, store)
  }
  return store
}

const Credentials = Type.Object(
  { password: Secret(Type.String({ minLength: 1 })) },
  { additionalProperties: false },
)
const Params = Type.Object(
  {
    store: Type.String({ minLength: 1, description: 'Name of the in-memory store' }),
    expectedPassword: Type.Optional(
      Type.String({ description: 'The password check accepts (default "secret")' }),
    ),
    delayMs: Type.Optional(
      Type.Integer({ minimum: 0, default: 0, description: 'Delay before each item' }),
    ),
  },
  { additionalProperties: false },
)
const Stream = Type.Object(
  {
    range: Type.Optional(
      Type.Object(
        {
          after: Type.Optional(
            Type.String({ description: 'Only documents whose id sorts after this one' }),
          ),
          through: Type.Optional(
            Type.String({ description: 'Only documents whose id sorts at or before this one' }),
          ),
        },
        { additionalProperties: false, description: 'A range of ids (a partition)' },
      ),
    ),
  },
  { additionalProperties: false },
)
const Context = Type.Object({ id: Type.String() }, { additionalProperties: false })

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function createMemoryProvider(options: { id?: string; bug?: MemoryProviderBug } = {}) {
  const bug = options.bug
  return defineProvider({
    id: options.id ?? 'memory',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'In-memory documents (testing)',
    credentials: Credentials,
    params: Params,
    source: {
      data: 'document',
      stream: Stream,
      context: Context,
      incremental: true,
      ordering: 'document id',
      partition: true,
    },
    sink: {
      data: 'document',
      stream: Type.Object({}, { additionalProperties: false }),
      idempotentBy: 'document id',
    },
    async connect({ credentials, params }) {
      const store = memoryStore(params.store)
      const expected = params.expectedPassword ?? 'secret'
      const delayMs = params.delayMs ?? 0
      return {
        async check() {
          if (credentials.password !== expected) {
            const message =
              bug === 'leaks-password'
                ? `password ${credentials.password} was refused`
                : 'password authentication failed'
            throw new ProviderError({ kind: 'auth', message })
          }
        },
        async *read(stream, { after, signal }) {
          let start = 0
          const lower = stream.range?.after
          // The bug forgets the upper bound on the resume path: a resumed partition runs past its range.
          const upper =
            bug === 'partition-resume-escapes' && after ? undefined : stream.range?.through
          if (after) {
            start = store.source.findIndex((d) => compareIds(d.id, after.id) > 0)
            if (start === -1) start = store.source.length
            if (bug === 'repeat-on-resume') start = Math.max(0, start - 1)
            if (bug === 'skip-on-resume') start += 1
          }
          if (lower !== undefined) {
            let first = store.source.findIndex((d) => compareIds(d.id, lower) > 0)
            if (first === -1) first = store.source.length
            start = Math.max(start, first)
          }
          for (let i = start; i < store.source.length; i++) {
            if (upper !== undefined && compareIds(store.source[i]!.id, upper) > 0) return
            if (i > start || delayMs > 0) {
              if (bug === 'ignores-abort') {
                // Models a network wait that does not observe the signal: once the caller has
                // given up, the next item still takes its full (long) round trip.
                await sleep(Math.max(delayMs, 1))
                if (signal.aborted) await sleep(5_000)
              } else {
                await sleep(Math.max(delayMs, 1), signal)
              }
            }
            const doc = store.source[i]!
            yield { data: structuredClone(doc), context: { id: doc.id } }
          }
        },
        async partition(stream, { count }) {
          // Boundaries at the quantiles of the ids in the stream's range; the first and last
          // partitions keep the stream's own bounds (the last is open-ended for new ids).
          const lower = stream.range?.after
          const upper = stream.range?.through
          const ids = store.source
            .map((d) => d.id)
            .filter(
              (id) =>
                (lower === undefined || compareIds(id, lower) > 0) &&
                (upper === undefined || compareIds(id, upper) <= 0),
            )
          const parts = Math.min(count, ids.length)
          if (parts <= 1)
            return {
              partitions: [stream],
              reason: ids.length === 0 ? 'the store is empty' : 'one document',
            }
          const bounds = Array.from(
            { length: parts - 1 },
            (_, j) => ids[Math.floor(((j + 1) * ids.length) / parts) - 1]!,
          )
          const partitions = Array.from({ length: parts }, (_, j) => {
            let after = j === 0 ? lower : bounds[j - 1]
            // Starts one id early: the previous partition's last id is read twice.
            if (bug === 'overlapping-partitions' && j > 0)
              after = ids[ids.indexOf(bounds[j - 1]!) - 1] ?? after
            let through = j === parts - 1 ? upper : bounds[j]
            // Ends at the last id there is now: ids added later belong to no partition.
            if (bug === 'closed-last-partition' && j === parts - 1) through = ids[ids.length - 1]
            const range = {
              ...(after === undefined ? {} : { after }),
              ...(through === undefined ? {} : { through }),
            }
            return { ...stream, range }
          })
          return { partitions }
        },
        async write(_stream, batch): Promise<WriteResult> {
          const failed: WriteResult['failed'] = []
          let written = 0
          batch.forEach((item, index) => {
            const doc = item as DocumentData
            if (doc.id.length === 0 || doc.id.length > 256) {
              failed.push({
                index,
                error: new ProviderError({
                  kind: 'data',
                  message: `document id must be 1 to 256 characters, got ${doc.id.length}`,
                }),
              })
              return
            }
            const existing = store.sink.findIndex((d) => d.id === doc.id)
            if (existing >= 0 && bug !== 'not-idempotent')
              store.sink[existing] = structuredClone(doc)
            else store.sink.push(structuredClone(doc))
            written++
          })
          return { written, failed }
        },
        async close() {},
      }
    },
  })
}

/** Put documents `item-<n>` for n in [from, from + count) into a store's source, sorted by id. */
export function seedMemoryStore(
  name: string,
  from: number,
  count: number,
  content: (n: number) => JsonObject = (n) => ({ n }),
): void {
  const store = memoryStore(name)
  for (let n = from; n < from + count; n++) {
    store.source.push({ kind: 'document', id: memoryItemId(n), content: content(n) })
  }
  store.source.sort((a, b) => compareIds(a.id, b.id))
}

/** Ids sort in item-number order. */
export function memoryItemId(n: number): string {
  return `item-${String(n).padStart(8, '0')}`
}
