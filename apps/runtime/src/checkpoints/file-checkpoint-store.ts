import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ProviderError } from '@nvisy/provider-core'
import type { CheckpointStore } from '../executor/types.js'
import type { StoredCheckpoint } from './memory-checkpoint-store.js'

/**
 * Checkpoints in one local JSON file, `{ "<pipelineId>.<nodeId>": { context, runId, at } }`.
 * Every save rewrites the file atomically (a temporary file renamed over it), so a crash
 * leaves either the old or the new content, never a torn file. Saves are serialized.
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
      await mkdir(dirname(this.path), { recursive: true })
      const temporary = `${this.path}.${process.pid}.tmp`
      await writeFile(temporary, `${JSON.stringify(entries, null, 2)}\n`)
      await rename(temporary, this.path)
    })
    this.#queue = next.catch(() => {})
    return next
  }
}
