import type { Static, TSchema } from '@sinclair/typebox'
import { guardConnection, keepAbort } from './connection-guard.js'
import {
  type Capabilities,
  type ConnectInput,
  type Connection,
  type Provider,
  type ProviderDefinition,
  type ProviderDescription,
  SPECIFICATION_VERSION,
} from './contract.js'
import { DATA_KINDS, type DataKind } from './data.js'
import { type Operation, ProviderError, toProviderError, type ValidationIssue } from './errors.js'
import { redactingLogger, silentLogger } from './logger.js'
import { Redactor } from './redact.js'
import { formatIssues, validateValue } from './schema.js'

function kindsOf(data: DataKind | readonly DataKind[] | undefined): DataKind[] {
  if (data === undefined) return []
  return typeof data === 'string' ? [data] : [...data]
}

const ID_PATTERN = /^[a-z][a-z0-9-]{0,63}$/

/**
 * Define a provider. Returns the provider the runtime loads: input validated against the
 * schemas (compiled once), errors classified, given provider/operation/stream/cursor context
 * and redacted of every secret, data kinds checked, and the connection closed once.
 */
export function defineProvider<
  TCredentials extends TSchema,
  TParams extends TSchema,
  TStream extends TSchema = TSchema,
  TContext extends TSchema = TSchema,
  TSinkStream extends TSchema = TSchema,
>(
  definition: ProviderDefinition<TCredentials, TParams, TStream, TContext, TSinkStream>,
): Provider<TCredentials, TParams, TStream, TContext, TSinkStream> {
  if (!ID_PATTERN.test(definition.id)) {
    throw new ProviderError({
      kind: 'config',
      message: `provider id ${JSON.stringify(definition.id)} must match ${ID_PATTERN} (lower-case letters, digits, dashes)`,
    })
  }
  if (definition.specificationVersion !== SPECIFICATION_VERSION) {
    throw new ProviderError({
      kind: 'config',
      providerId: definition.id,
      message: `provider ${definition.id} implements specification ${String(definition.specificationVersion)}, this core implements ${SPECIFICATION_VERSION}`,
    })
  }
  const id = definition.id
  const sourceData = kindsOf(definition.source?.data)
  const sinkData = kindsOf(definition.sink?.data)
  for (const [side, kinds, declared] of [
    ['source', sourceData, definition.source],
    ['sink', sinkData, definition.sink],
  ] as const) {
    if (declared === undefined) continue
    const unknown = kinds.filter((kind) => !DATA_KINDS.includes(kind))
    if (kinds.length === 0 || unknown.length > 0) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        message: `provider ${id} ${side} data must be one or more of ${DATA_KINDS.join(', ')}; got ${JSON.stringify(kinds)}`,
      })
    }
  }
  const capabilities: Capabilities = Object.freeze({
    read: definition.source !== undefined,
    write: definition.sink !== undefined,
    discover: definition.discover === true,
    incremental: definition.source?.incremental === true,
    delete: definition.sink?.deletes === true,
    describeStream: definition.source?.describe === true,
    prepare: definition.sink?.prepare === true,
    offsets: definition.sink?.offsets === true,
    partition: definition.source?.partition === true,
    sourceData,
    sinkData,
  }) as Capabilities

  const validateInput = (input: ConnectInput) => {
    // Both are validated before failing, so one error lists every failing field.
    const failures: { what: string; issues: ValidationIssue[] }[] = []
    const attempt = <T>(what: string, validate: () => T): T | undefined => {
      try {
        return validate()
      } catch (error) {
        if (!ProviderError.isInstance(error) || !error.issues) throw error
        failures.push({ what, issues: error.issues })
        return undefined
      }
    }
    const credentials = attempt('credentials', () =>
      validateValue(definition.credentials, input?.credentials ?? {}, {
        what: `${id} credentials`,
        pathPrefix: '/credentials',
        providerId: id,
        operation: 'connect',
      }),
    )
    const params = attempt('params', () =>
      validateValue(definition.params, input?.params ?? {}, {
        what: `${id} params`,
        pathPrefix: '/params',
        providerId: id,
        operation: 'connect',
      }),
    )
    if (failures.length > 0) {
      const issues = failures.flatMap((f) => f.issues)
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation: 'connect',
        message: `invalid ${id} ${failures.map((f) => f.what).join(' and ')}: ${formatIssues(issues)}`,
        issues,
      })
    }
    return { credentials: credentials as Static<TCredentials>, params: params as Static<TParams> }
  }

  const requireSource = (operation: string) => {
    if (!definition.source) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation,
        message: `provider ${id} cannot read: it declares no source`,
      })
    }
    return definition.source
  }
  const requireSink = (operation: string) => {
    if (!definition.sink) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation,
        message: `provider ${id} cannot write: it declares no sink`,
      })
    }
    return definition.sink
  }

  const validateStream = (stream: unknown) =>
    validateValue(requireSource('read').stream, stream, {
      what: `${id} stream settings`,
      pathPrefix: '/stream',
      providerId: id,
      operation: 'read',
    })
  const validateSinkStream = (stream: unknown) =>
    validateValue(requireSink('write').stream, stream, {
      what: `${id} sink stream settings`,
      pathPrefix: '/stream',
      providerId: id,
      operation: 'write',
    })
  const validateContext = (context: unknown) =>
    validateValue(requireSource('read').context, context, {
      what: `${id} resume context`,
      pathPrefix: '/after',
      providerId: id,
      operation: 'read',
    })

  const sourceDataKind = (stream: Static<TStream>): DataKind => {
    const source = requireSource('read')
    if (source.dataKindOf) return source.dataKindOf(stream)
    return sourceData[0]!
  }
  const isIncremental = (stream: Static<TStream>): boolean => {
    const source = requireSource('read')
    if (source.incrementalFor) return source.incrementalFor(stream)
    return source.incremental === true
  }
  const sinkDataKind = (stream: Static<TSinkStream>): DataKind => {
    const sink = requireSink('write')
    if (sink.dataKindOf) return sink.dataKindOf(stream)
    return sinkData[0]!
  }

  const redactor = (input: ConnectInput) =>
    Redactor.merge(
      Redactor.fromSchema(definition.credentials, input?.credentials),
      Redactor.fromSchema(definition.params, input?.params),
    )

  const provider: Provider<TCredentials, TParams, TStream, TContext, TSinkStream> = {
    id,
    version: definition.version,
    specificationVersion: SPECIFICATION_VERSION,
    capabilities,
    definition,
    validateInput,
    validateStream,
    validateSinkStream,
    validateContext,
    sourceDataKind,
    sinkDataKind,
    isIncremental,
    redactor,
    describe() {
      const description: ProviderDescription = {
        id,
        version: definition.version,
        specificationVersion: SPECIFICATION_VERSION,
        capabilities,
        schemas: { credentials: definition.credentials, params: definition.params },
      }
      if (definition.displayName) description.displayName = definition.displayName
      if (definition.description) description.description = definition.description
      if (definition.source) {
        description.schemas.sourceStream = definition.source.stream
        description.schemas.context = definition.source.context
        description.ordering = definition.source.ordering
      }
      if (definition.sink) {
        description.schemas.sinkStream = definition.sink.stream
        description.idempotentBy = definition.sink.idempotentBy
      }
      return description
    },
    async connect(input, context = {}) {
      const redact = redactor(input)
      const logger = redactingLogger(context.logger ?? silentLogger, redact)
      const signal = context.signal ?? new AbortController().signal
      const fail = (
        error: unknown,
        where: { operation: Operation; stream?: string | undefined; cursor?: unknown },
      ) =>
        redact.error(
          toProviderError(error, { providerId: id, ...where, classify: definition.classifyError }),
        )
      const validated = (() => {
        try {
          return validateInput(input)
        } catch (error) {
          throw fail(error, { operation: 'connect' })
        }
      })()
      let connection: Connection<Static<TStream>, Static<TContext>, Static<TSinkStream>>
      try {
        connection = await definition.connect(validated, { signal, logger })
      } catch (error) {
        throw keepAbort(error, redact) ?? fail(error, { operation: 'connect' })
      }
      return guardConnection(provider, connection, fail, redact)
    },
  }
  return provider
}
