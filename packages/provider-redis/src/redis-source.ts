import {
  type DocumentData,
  exactNumberFields,
  type JsonObject,
  type MessageData,
  ProviderError,
  type ReadItem,
  raceAbort,
  throwIfAborted,
} from '@nvisy/provider-core'
import type { Redis } from 'ioredis'
import { type RedisClient, scanTargets } from './redis-client.js'
import type {
  RedisContext,
  RedisDocumentContext,
  RedisDocumentStream,
  RedisMessageContext,
  RedisMessageStream,
} from './redis-schemas.js'

export const DEFAULT_COUNT = 1000

/** Stream entry fields with a meaning; any other field is read as a header. */
export const ID_FIELD = 'nvisy-id'
export const PAYLOAD_FIELD = 'payload'
export const SUBJECT_FIELD = 'nvisy-subject'
export const HEADER_PREFIX = 'h:'

type RawEntry = [Buffer, Buffer[]]

/** A stream entry as a message. Entries not written by this provider keep their fields as headers. */
export function entryToMessage(entry: RawEntry): MessageData {
  const entryId = entry[0].toString('latin1')
  const fields = entry[1]
  let id: string | undefined
  let subject: string | undefined
  let payload: Uint8Array | undefined
  let headers: Record<string, string> | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('utf8')
    const value = fields[i + 1]!
    if (name === PAYLOAD_FIELD) payload = value
    else if (name === ID_FIELD) id = value.toString('utf8')
    else if (name === SUBJECT_FIELD) subject = value.toString('utf8')
    else {
      headers ??= {}
      headers[name.startsWith(HEADER_PREFIX) ? name.slice(HEADER_PREFIX.length) : name] =
        value.toString('utf8')
    }
  }
  const message: MessageData = {
    kind: 'message',
    id: id ?? entryId,
    payload: payload ?? new Uint8Array(0),
    timestamp: new Date(Number(entryId.slice(0, entryId.indexOf('-')))),
  }
  if (subject !== undefined) message.subject = subject
  if (headers) message.headers = headers
  return message
}

function isMessageContext(context: RedisContext): context is RedisMessageContext {
  return 'id' in context
}

function wrongContext(expected: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `resume context does not fit this stream: a ${expected} read resumes from ${
      expected === 'stream' ? '{ id }' : '{ cursor, key }'
    }`,
  })
}

/**
 * Read a Redis stream in entry-id order with XRANGE, `count` entries per round trip. Resume
 * uses the exclusive start `(id`, so an item's context yields exactly the entries after it,
 * including ones added since (incremental).
 */
export async function* readMessages(
  client: RedisClient,
  stream: RedisMessageStream,
  after: RedisContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<RedisMessageContext>> {
  if (after !== undefined && !isMessageContext(after)) throw wrongContext('stream')
  const count = stream.count ?? DEFAULT_COUNT
  let start = after ? `(${after.id}` : '-'
  while (true) {
    throwIfAborted(signal)
    const page = (await raceAbort(
      client.xrangeBuffer(stream.key, start, '+', 'COUNT', count),
      signal,
    )) as unknown as RawEntry[]
    for (const entry of page) {
      const id = entry[0].toString('latin1')
      yield { data: entryToMessage(entry), context: { id } }
    }
    if (page.length < count) return
    start = `(${page[page.length - 1]![0].toString('latin1')}`
  }
}

/** Escape glob characters so a prefix matches only itself in SCAN MATCH. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function parseDocument(
  key: string,
  id: string,
  text: string,
  context: RedisDocumentContext,
): DocumentData {
  let content: unknown
  try {
    content = JSON.parse(text)
  } catch (error) {
    throw new ProviderError({
      kind: 'data',
      message: `key ${JSON.stringify(key)} does not hold JSON text`,
      cursor: context,
      cause: error,
    })
  }
  if (content === null || typeof content !== 'object' || Array.isArray(content)) {
    throw new ProviderError({
      kind: 'data',
      message: `key ${JSON.stringify(key)} holds JSON that is not an object`,
      cursor: context,
    })
  }
  // Numbers JSON.parse does not hold exactly keep their text (a quick scan finds them).
  const rawJson = exactNumberFields(text)
  return rawJson
    ? { kind: 'document', id, content: content as JsonObject, rawJson }
    : { kind: 'document', id, content: content as JsonObject }
}

async function getValues(
  redis: Redis,
  keys: readonly string[],
  signal: AbortSignal,
): Promise<(string | null)[]> {
  const pipeline = redis.pipeline()
  for (const key of keys) pipeline.get(key)
  const results = (await raceAbort(pipeline.exec(), signal)) ?? []
  return results.map(([error, value]) => {
    if (error) throw error
    return value as string | null
  })
}

/**
 * Read the string keys under a prefix with SCAN MATCH prefix* TYPE string, `count` as the
 * SCAN COUNT hint. SCAN has no order and may return a key twice; each page is deduplicated
 * and sorted. An item's context is the cursor that produced its page, the cursor that page
 * returned, and its key. Resuming re-runs SCAN from the page's cursor: when it returns the
 * same next cursor, the page covers the same hash buckets, so skipping its keys up to and
 * including the context's key yields exactly the items that followed. When the next cursor
 * differs (keys were added or removed and the page boundaries moved) the whole page is
 * yielded again: a possible duplicate, never a gap. In a cluster each master is scanned in
 * turn (host:port order).
 */
export async function* readDocuments(
  client: RedisClient,
  stream: RedisDocumentStream,
  after: RedisContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<RedisDocumentContext>> {
  if (after !== undefined && isMessageContext(after)) throw wrongContext('document')
  const count = stream.count ?? DEFAULT_COUNT
  const pattern = `${escapeGlob(stream.prefix)}*`
  const targets = scanTargets(client)
  let first = 0
  if (after?.node !== undefined) {
    first = targets.findIndex((target) => target.node === after.node)
    if (first < 0) {
      throw new ProviderError({
        kind: 'data',
        message: `the resume context names cluster node ${after.node}, which is no longer a master; the cluster topology changed, so this read cannot resume`,
        cursor: after,
      })
    }
  }
  for (let t = first; t < targets.length; t++) {
    const { node, redis } = targets[t]!
    let resume = after !== undefined && t === first ? after : undefined
    let cursor = resume ? resume.cursor : '0'
    do {
      throwIfAborted(signal)
      const pageCursor = cursor
      const [next, found] = await raceAbort(
        redis.scan(pageCursor, 'MATCH', pattern, 'COUNT', count, 'TYPE', 'string'),
        signal,
      )
      cursor = next
      let keys = [...new Set(found)].sort()
      if (resume !== undefined) {
        const bound = resume.key
        if (next === resume.next) keys = keys.filter((key) => key > bound)
        resume = undefined
      }
      if (keys.length === 0) continue
      const values = await getValues(redis, keys, signal)
      for (let i = 0; i < keys.length; i++) {
        const value = values[i]
        // Deleted between SCAN and GET: it is gone, nothing to yield.
        if (value === null || value === undefined) continue
        const key = keys[i]!
        const context: RedisDocumentContext = { cursor: pageCursor, next, key }
        if (node !== undefined) context.node = node
        yield { data: parseDocument(key, key.slice(stream.prefix.length), value, context), context }
      }
    } while (cursor !== '0')
  }
}
