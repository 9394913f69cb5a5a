import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type GuardedConnection,
  ProviderError,
  type ReadItem,
  readBytes,
} from '@nvisy/provider-core'
import { readAll as readItems } from '@nvisy/provider-testkit'
import { fsProvider } from '../index.js'

export async function tempRoot(
  label: string,
): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), `nvisy-fs-${label}-`))
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) }
}

export function connectTo(
  root: string,
  extra: Record<string, unknown> = {},
): Promise<GuardedConnection> {
  return fsProvider.connect({ credentials: {}, params: { root, ...extra } })
}

/** Every item of `stream`, resuming after `after` when given (the testkit's `readAll`). */
export function readAll(
  connection: GuardedConnection,
  stream: unknown,
  after?: unknown,
): Promise<ReadItem[]> {
  return readItems(connection, stream, { after })
}

export async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!ProviderError.isInstance(error))
    throw new Error(`expected a ProviderError, got ${String(error)}`)
  return error
}

export async function bodyText(item: ReadItem): Promise<string> {
  if (item.data.kind !== 'blob') throw new Error('not a blob')
  return (await readBytes(item.data.body)).toString('utf8')
}

export const signal = (): AbortSignal => new AbortController().signal
