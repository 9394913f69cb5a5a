import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ProviderError } from '@nvisy/provider-core'
import type { CheckpointStore } from '../executor/types.js'
import type { StoredCheckpoint } from './memory-checkpoint-store.js'

/**
 * Checkpoints in one local JSON file, `{ "<pipelineId>.<nodeId>": { context, runId, at } }`.
 * Every save rewrites the file atomically (a temporary file renamed over it), so a crash
 * leaves either the old or the new content, never a torn file. Saves are serialized.
 * The file (and its folder, when created here) is private to its owner: mode 0600 (0700),
 * since contexts name keys, ids and offsets of the data; every save writes it 0600, so an
 * existing file left readable by others is made private at the first save.
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly path: string
  #entries: Record<string, StoredCheckpoint> | undefined
  #queue: Promise<void> = Promise.resolve()

  constructor(path: string) {
    this.path = path
  }

  async #read(): Promise<Record<string, StoredCheckpoint>> {
    if (this.#entries) return this.#entries
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#entries = {}
        return this.#entries
      }
      throw error
    }
    // Made private when read too, not only at the next save (best effort: not ours to change
    // when another user owns it).
    await stat(this.path)
      .then((info) => ((info.mode & 0o077) !== 0 ? chmod(this.path, 0o600) : undefined))
      .catch(() => {})
    try {
      const parsed = JSON.parse(text) as unknown
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('not a JSON object')
      this.#entries = parsed as Record<string, StoredCheckpoint>
      return this.#entries
    } catch (error) {
      throw new ProviderError({
        kind: 'config',
        message: `checkpoint file ${this.path} is not valid: ${(error as Error).message}`,
      })
    }
  }

  async load(pipelineId: string, nodeId: string): Promise<unknown | undefined> {
    const entries = await this.#read()
    const entry = entries[`${pipelineId}.${nodeId}`]
    return entry === undefined ? undefined : structuredClone(entry.context)
  }

  save(pipelineId: string, nodeId: string, context: unknown, runId: string): Promise<void> {
    const next = this.#queue.then(async () => {
      const entries = await this.#read()
      entries[`${pipelineId}.${nodeId}`] = {
        context: structuredClone(context),
        runId,
        at: new Date().toISOString(),
      }
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
      const temporary = `${this.path}.${process.pid}.tmp`
      try {
        await writeFile(temporary, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600 })
        // A temporary file left by a crash keeps its old mode through writeFile: set it.
        await chmod(temporary, 0o600)
        await rename(temporary, this.path)
      } catch (error) {
        await rm(temporary, { force: true })
        throw error
      }
    })
    this.#queue = next.catch(() => {})
    return next
  }
}
