import type { CheckpointStore } from '../executor/types.js'

export interface StoredCheckpoint {
  context: unknown
  runId: string
  at: string
}

/** Checkpoints in memory: for tests and one-off runs. Values are copied in and out. */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly entries = new Map<string, StoredCheckpoint>()

  async load(pipelineId: string, nodeId: string): Promise<unknown | undefined> {
    const entry = this.entries.get(`${pipelineId}.${nodeId}`)
    return entry === undefined ? undefined : structuredClone(entry.context)
  }

  async save(pipelineId: string, nodeId: string, context: unknown, runId: string): Promise<void> {
    this.entries.set(`${pipelineId}.${nodeId}`, {
      context: structuredClone(context),
      runId,
      at: new Date().toISOString(),
    })
  }
}
