import type { TSchema } from '@nvisy/provider-core'
import { RunEventSchema, runEventSchemas } from './events.js'
import {
  CancelReplySchema,
  CancelRequestSchema,
  CheckpointValueSchema,
  CheckReplySchema,
  CheckRequestSchema,
  DiscoverReplySchema,
  DiscoverRequestSchema,
  ErrorReplySchema,
  ProvidersReplySchema,
  ProvidersRequestSchema,
  RunsStartReplySchema,
  RunsStartRequestSchema,
  SealedCredentialsPlaintextSchema,
} from './messages.js'
import {
  PARTITION_WORK_CONSUMER,
  PARTITION_WORK_STREAM,
  PARTITIONED_RUNS_BUCKET,
  PartitionedRunRecordSchema,
  PartitionRecordSchema,
  PartitionWorkItemSchema,
} from './partitions.js'
import { PipelineSchema } from './pipeline.js'
import {
  CHECKPOINT_BUCKET,
  PROTOCOL_VERSION,
  QUEUE_GROUP,
  RUN_EVENTS_STREAM,
  subjects,
} from './subjects.js'

export interface MessageDefinition {
  /** File name under `schemas/`, without `.json`. */
  name: string
  schema: TSchema
  /** Where the message travels: a subject (with `<runId>` placeholders), a KV bucket, or none. */
  subject?: string
  bucket?: string
  stream?: string
  /** request: the runtime receives it; reply/event/value: the runtime sends it. */
  direction: 'request' | 'reply' | 'event' | 'value' | 'embedded'
  description: string
}

const cancelSubject = `${subjects.prefix}.runs.<runId>.cancel`
const eventsSubject = `${subjects.prefix}.events.<runId>`

/** Every message of the protocol, in the order of the index. */
export const messageDefinitions: readonly MessageDefinition[] = [
  {
    name: 'providers.request',
    schema: ProvidersRequestSchema,
    subject: subjects.providers,
    direction: 'request',
    description: 'Ask for the provider catalog (an empty payload is the same).',
  },
  {
    name: 'providers.reply',
    schema: ProvidersReplySchema,
    subject: subjects.providers,
    direction: 'reply',
    description:
      'The runtime instance, its xkey public key and the provider catalog with JSON Schemas.',
  },
  {
    name: 'check.request',
    schema: CheckRequestSchema,
    subject: subjects.check,
    direction: 'request',
    description: 'Connect with a provider and check the connection.',
  },
  {
    name: 'check.reply',
    schema: CheckReplySchema,
    subject: subjects.check,
    direction: 'reply',
    description: 'The check passed; how long it took.',
  },
  {
    name: 'discover.request',
    schema: DiscoverRequestSchema,
    subject: subjects.discover,
    direction: 'request',
    description: 'List the streams a connection can read or write.',
  },
  {
    name: 'discover.reply',
    schema: DiscoverReplySchema,
    subject: subjects.discover,
    direction: 'reply',
    description: 'The streams of the connection.',
  },
  {
    name: 'runs.start.request',
    schema: RunsStartRequestSchema,
    subject: subjects.runsStart,
    direction: 'request',
    description: 'Start a pipeline run.',
  },
  {
    name: 'runs.start.reply',
    schema: RunsStartReplySchema,
    subject: subjects.runsStart,
    direction: 'reply',
    description: 'The run was accepted by this instance; its progress follows as run events.',
  },
  {
    name: 'runs.cancel.request',
    schema: CancelRequestSchema,
    subject: cancelSubject,
    direction: 'request',
    description: 'Cancel a run. Only the instance running it replies.',
  },
  {
    name: 'runs.cancel.reply',
    schema: CancelReplySchema,
    subject: cancelSubject,
    direction: 'reply',
    description: 'The run is being cancelled; a `cancelled` event follows.',
  },
  {
    name: 'error.reply',
    schema: ErrorReplySchema,
    subject: `${subjects.prefix}.>`,
    direction: 'reply',
    description:
      'The reply to any request that failed, naming the path and rule of each bad field.',
  },
  {
    name: 'events',
    schema: RunEventSchema,
    subject: eventsSubject,
    stream: RUN_EVENTS_STREAM,
    direction: 'event',
    description: 'Any run event, discriminated by `type`.',
  },
  ...Object.entries(runEventSchemas).map(([type, schema]) => ({
    name: `events.${type}`,
    schema,
    subject: eventsSubject,
    stream: RUN_EVENTS_STREAM,
    direction: 'event' as const,
    description: `The \`${type}\` run event.`,
  })),
  {
    name: 'checkpoint.value',
    schema: CheckpointValueSchema,
    bucket: CHECKPOINT_BUCKET,
    direction: 'value',
    description: 'A checkpoint, under key `<pipelineId>.<sourceNodeId>`.',
  },
  {
    name: 'partitions.work',
    schema: PartitionWorkItemSchema,
    subject: subjects.partitionWork,
    stream: PARTITION_WORK_STREAM,
    direction: 'value',
    description:
      'One partition of a partitioned run to read, on the work-queue stream: taken by any instance of the queue group, acknowledged only when the partition ended. Runtime to runtime; its credentials are sealed by the runtime key to itself.',
  },
  {
    name: 'partitions.run',
    schema: PartitionedRunRecordSchema,
    bucket: PARTITIONED_RUNS_BUCKET,
    direction: 'value',
    description:
      'A partitioned run, under key `<runId>`: its plan, which partitions it reads, whether the sinks are prepared, and whether it is running, stopping (cancelled or failed) or ended.',
  },
  {
    name: 'partitions.partition',
    schema: PartitionRecordSchema,
    bucket: PARTITIONED_RUNS_BUCKET,
    direction: 'value',
    description: 'How one partition of a partitioned run ended, under key `<runId>.<index>`.',
  },
  {
    name: 'credentials.sealed',
    schema: SealedCredentialsPlaintextSchema,
    direction: 'embedded',
    description:
      'The plaintext the server seals into `sealedCredentials` (v2): the credentials and their binding to one run node or request, as canonical JSON.',
  },
  {
    name: 'pipeline',
    schema: PipelineSchema,
    direction: 'embedded',
    description: 'A pipeline graph, as sent in `runs.start`.',
  },
]

const DRAFT = 'http://json-schema.org/draft-07/schema#'

/** A plain JSON copy of a TypeBox schema: TypeBox's symbol keys dropped. */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema))
}

/** The JSON Schema files of the protocol, by file name: what `schemas/` must hold. */
export function jsonSchemaFiles(): Record<string, object> {
  const files: Record<string, object> = {}
  for (const message of messageDefinitions) {
    files[`${message.name}.json`] = {
      $schema: DRAFT,
      $id: `urn:nvisy:runtime:${PROTOCOL_VERSION}:${message.name}`,
      title: message.name,
      description: message.description,
      ...plain(message.schema),
    }
  }
  files['index.json'] = {
    protocolVersion: PROTOCOL_VERSION,
    queueGroup: QUEUE_GROUP,
    eventsStream: { name: RUN_EVENTS_STREAM, subjects: [subjects.eventsAll] },
    checkpointBucket: { name: CHECKPOINT_BUCKET, key: '<pipelineId>.<sourceNodeId>' },
    partitionWork: {
      stream: PARTITION_WORK_STREAM,
      retention: 'workqueue',
      subjects: [subjects.partitionWork],
      consumer: PARTITION_WORK_CONSUMER,
    },
    partitionedRunsBucket: {
      name: PARTITIONED_RUNS_BUCKET,
      keys: ['<runId>', '<runId>.<partitionIndex>'],
    },
    messages: messageDefinitions.map((message) => {
      const entry: Record<string, unknown> = {
        name: message.name,
        file: `${message.name}.json`,
        direction: message.direction,
      }
      if (message.subject) entry.subject = message.subject
      if (message.stream) entry.stream = message.stream
      if (message.bucket) entry.bucket = message.bucket
      entry.description = message.description
      return entry
    }),
  }
  return files
}
