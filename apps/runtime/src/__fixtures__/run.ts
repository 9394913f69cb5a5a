// Run a pipeline over memory worlds and collect its events (executor tests).
import { MemoryCheckpointStore } from '../checkpoints/memory-checkpoint-store.js'
import { executePipeline } from '../executor/execute.js'
import type { ExecuteOptions, RunEvent } from '../executor/types.js'
import type { Pipeline } from '../pipeline-types.js'
import { MapProviderRegistry } from '../registry.js'
import type { MemoryWorld } from './memory-provider.js'

/** Each world's provider is registered (a real provider can be given as `{ provider }`). */
export async function runPipeline(
  worlds: Pick<MemoryWorld, 'provider'> | Pick<MemoryWorld, 'provider'>[],
  pipeline: Pipeline,
  extra: Partial<ExecuteOptions> = {},
) {
  const events: RunEvent[] = []
  const checkpoints = extra.checkpoints ?? new MemoryCheckpointStore()
  const list = Array.isArray(worlds) ? worlds : [worlds]
  const summary = await executePipeline({
    runId: 'run-1',
    pipeline,
    registry: new MapProviderRegistry(list.map((w) => w.provider)),
    resolveConnection: async (node) => ({
      credentials: node.connection.credentials ?? {},
      params: node.connection.params,
    }),
    onEvent: (event) => {
      events.push(event)
    },
    signal: new AbortController().signal,
    retryBaseDelayMs: 5,
    progressIntervalMs: 50,
    ...extra,
    checkpoints,
  })
  return { summary, events, checkpoints }
}

/** A checkpoint store that keeps the first `keep` saves and silently loses the rest (a process that died before saving). */
export class LosingCheckpointStore extends MemoryCheckpointStore {
  saves = 0
  constructor(public keep: number) {
    super()
  }
  override async save(
    pipelineId: string,
    nodeId: string,
    context: unknown,
    runId: string,
  ): Promise<void> {
    this.saves++
    if (this.saves <= this.keep) await super.save(pipelineId, nodeId, context, runId)
  }
}
