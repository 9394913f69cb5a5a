import type { KV } from '@nats-io/kv'
import {
  type CheckpointValue,
  CheckpointValueSchema,
  checkpointKey,
  validateMessage,
} from '@nvisy/protocol'
import { formatIssues, ProviderError } from '@nvisy/provider-core'
import type { CheckpointStore } from '../executor/types.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Checkpoints in a JetStream key-value bucket, key `<pipelineId>.<nodeId>`, value
 * `{ context, runId, at }`: any runtime instance resumes where another one stopped.
 */
export class KvCheckpointStore implements CheckpointStore {
  readonly #kv: KV

  constructor(kv: KV) {
    this.#kv = kv
  }

  async load(pipelineId: string, nodeId: string): Promise<unknown | undefined> {
    const key = checkpointKey(pipelineId, nodeId)
    const entry = await this.#kv.get(key)
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    let value: unknown
    try {
      value = JSON.parse(decoder.decode(entry.value))
    } catch {
      throw new ProviderError({
        kind: 'internal',
        operation: 'checkpoint',
        message: `checkpoint ${key} is not valid JSON; delete the key to restart this source from the beginning`,
      })
    }
    const checked = validateMessage(CheckpointValueSchema, value)
    if (!checked.ok) {
      throw new ProviderError({
        kind: 'internal',
        operation: 'checkpoint',
        message: `checkpoint ${key} is not a valid checkpoint value: ${formatIssues(checked.issues)}`,
        issues: checked.issues,
      })
    }
    return checked.value.context
  }

  async save(pipelineId: string, nodeId: string, context: unknown, runId: string): Promise<void> {
    const key = checkpointKey(pipelineId, nodeId)
    const value: CheckpointValue = { context, runId, at: new Date().toISOString() }
    await this.#kv.put(key, encoder.encode(JSON.stringify(value)))
  }

  /** The stored value with its run id and time, for tools and tests. */
  async entry(pipelineId: string, nodeId: string): Promise<CheckpointValue | undefined> {
    const entry = await this.#kv.get(checkpointKey(pipelineId, nodeId))
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    return JSON.parse(decoder.decode(entry.value)) as CheckpointValue
  }
}
