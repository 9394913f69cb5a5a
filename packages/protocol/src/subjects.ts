/** The protocol version in every subject. Breaking changes get `v2` subjects served side by side. */
export const PROTOCOL_VERSION = 'v1'

/** The prefix of every subject of this protocol version. */
export const SUBJECT_PREFIX = `nvisy.runtime.${PROTOCOL_VERSION}`

/** The queue group every runtime instance serves the request subjects in. */
export const QUEUE_GROUP = 'nvisy-runtime'

/** The JetStream stream that keeps run events. */
export const RUN_EVENTS_STREAM = 'NVISY_RUN_EVENTS'

/** The JetStream key-value bucket that keeps checkpoints, key `<pipelineId>.<nodeId>`. */
export const CHECKPOINT_BUCKET = 'nvisy-checkpoints'

/** Run ids, pipeline ids and node ids become subject and key tokens: no dots, no wildcards. */
export const RUN_ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$'
export const PIPELINE_ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$'
export const NODE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
export const PROVIDER_ID_PATTERN = '^[a-z][a-z0-9-]{0,63}$'

const runIdRegExp = new RegExp(RUN_ID_PATTERN)
const pipelineIdRegExp = new RegExp(PIPELINE_ID_PATTERN)
const nodeIdRegExp = new RegExp(NODE_ID_PATTERN)

export interface Subjects {
  /** The prefix the others are built on, `nvisy.runtime.v1`. */
  readonly prefix: string
  /** Request `{}`: the provider catalog and the runtime's public key. */
  readonly providers: string
  /** Request `{ provider, connection }`: connect and check. */
  readonly check: string
  /** Request `{ provider, connection }`: list the streams of a connection. */
  readonly discover: string
  /** Request `{ runId, pipeline, resume? }`: start a run. */
  readonly runsStart: string
  /** Wildcard over every run's cancel subject. */
  readonly runsCancelAll: string
  /** Wildcard over every run's events subject: the subjects of the events stream. */
  readonly eventsAll: string
  /** The work items of partitioned runs: the subject of the partition work-queue stream. */
  readonly partitionWork: string
  /** `<prefix>.runs.<runId>.cancel` */
  runCancel(runId: string): string
  /** `<prefix>.events.<runId>` */
  runEvents(runId: string): string
}

function assertToken(value: string, pattern: RegExp, what: string): void {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new RangeError(
      `${what} ${JSON.stringify(value)} must match ${pattern.source}: it becomes a NATS subject or key token`,
    )
  }
}

/** The subjects under a prefix. The default prefix is the protocol's; tests use their own. */
export function createSubjects(prefix: string = SUBJECT_PREFIX): Subjects {
  return Object.freeze({
    prefix,
    providers: `${prefix}.providers`,
    check: `${prefix}.check`,
    discover: `${prefix}.discover`,
    runsStart: `${prefix}.runs.start`,
    runsCancelAll: `${prefix}.runs.*.cancel`,
    eventsAll: `${prefix}.events.>`,
    partitionWork: `${prefix}.partitions.work`,
    runCancel(runId: string) {
      assertToken(runId, runIdRegExp, 'run id')
      return `${prefix}.runs.${runId}.cancel`
    },
    runEvents(runId: string) {
      assertToken(runId, runIdRegExp, 'run id')
      return `${prefix}.events.${runId}`
    },
  })
}

/** The protocol's subjects, `nvisy.runtime.v1.*`. */
export const subjects: Subjects = createSubjects()

/** `nvisy.runtime.v1.runs.<runId>.cancel`; throws a RangeError for a run id that is not a valid token. */
export function runCancelSubject(runId: string): string {
  return subjects.runCancel(runId)
}

/** `nvisy.runtime.v1.events.<runId>`; throws a RangeError for a run id that is not a valid token. */
export function runEventsSubject(runId: string): string {
  return subjects.runEvents(runId)
}

/** The checkpoint bucket key of a source node: `<pipelineId>.<nodeId>`. */
export function checkpointKey(pipelineId: string, nodeId: string): string {
  assertToken(pipelineId, pipelineIdRegExp, 'pipeline id')
  assertToken(nodeId, nodeIdRegExp, 'node id')
  return `${pipelineId}.${nodeId}`
}
