import {
  type Connection,
  defineProvider,
  ProviderError,
  type ReadOptions,
  SPECIFICATION_VERSION,
} from '@nvisy/provider-core'
import neo4j, { type AuthToken, type Config, type Driver } from 'neo4j-driver'
import { classifyNeo4jError } from './neo4j-errors.js'
import {
  type Neo4jContext,
  Neo4jContextSchema,
  type Neo4jCredentials,
  Neo4jCredentialsSchema,
  type Neo4jParams,
  Neo4jParamsSchema,
  type Neo4jSinkStream,
  Neo4jSinkStreamSchema,
  type Neo4jStream,
  Neo4jStreamSchema,
} from './neo4j-schemas.js'
import { Neo4jSink } from './neo4j-sink.js'
import { type Neo4jTarget, readGraph } from './neo4j-source.js'
import { VERSION } from './version.js'

export interface Neo4jProviderOptions {
  /**
   * A driver to use instead of creating one from credentials and params (create it with
   * `useBigInt: true`; Integer values are converted either way). The provider never closes it.
   */
  driver?: Driver
  /** Extra driver settings for drivers the provider creates. */
  driverConfig?: Config
}

function authToken(credentials: Neo4jCredentials): AuthToken {
  if (credentials.token !== undefined) {
    if (credentials.user !== undefined || credentials.password !== undefined) {
      throw new ProviderError({
        kind: 'config',
        message:
          'neo4j credentials: give either /credentials/token or /credentials/user and /credentials/password, not both',
        issues: [
          {
            path: '/credentials/token',
            rule: 'oneOf',
            message: 'token excludes user and password',
          },
        ],
      })
    }
    return neo4j.auth.bearer(credentials.token)
  }
  if (credentials.user === undefined || credentials.password === undefined) {
    throw new ProviderError({
      kind: 'config',
      message:
        'neo4j credentials: /credentials/user and /credentials/password are required (or /credentials/token)',
      issues: [
        { path: '/credentials/user', rule: 'required', message: 'user and password, or token' },
      ],
    })
  }
  return neo4j.auth.basic(credentials.user, credentials.password)
}

class Neo4jConnection implements Connection<Neo4jStream, Neo4jContext, Neo4jSinkStream> {
  private readonly target: Neo4jTarget
  private readonly sink: Neo4jSink

  constructor(
    driver: Driver,
    database: string | undefined,
    private readonly owned: boolean,
  ) {
    this.target = { driver, database }
    this.sink = new Neo4jSink(this.target)
  }

  async check(): Promise<void> {
    // An auto-commit query on the configured database: proves the address, the credentials
    // and that the database exists, without the driver's transaction retries.
    const session = this.target.driver.session({
      database: this.target.database,
      defaultAccessMode: neo4j.session.READ,
    })
    try {
      await session.run('RETURN 1 AS ok')
    } finally {
      await session.close()
    }
  }

  read(stream: Neo4jStream, options: ReadOptions<Neo4jContext>) {
    return readGraph(this.target, stream, options)
  }

  write(
    stream: Neo4jSinkStream,
    batch: Parameters<Neo4jSink['write']>[1],
    options: Parameters<Neo4jSink['write']>[2],
  ) {
    return this.sink.write(stream, batch, options)
  }

  async close(): Promise<void> {
    if (this.owned) await this.target.driver.close()
  }
}

/** The Neo4j provider; pass `driver` to use a driver the caller owns. */
export function createNeo4jProvider(options: Neo4jProviderOptions = {}) {
  return defineProvider({
    id: 'neo4j',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Neo4j',
    description:
      'Neo4j graphs over Bolt: nodes of a label with their outgoing relationships; MERGE upserts',
    credentials: Neo4jCredentialsSchema,
    params: Neo4jParamsSchema,
    source: {
      data: 'graph',
      stream: Neo4jStreamSchema,
      context: Neo4jContextSchema,
      incremental: true,
      ordering: 'key property of the label (keyProperty, default id), ascending',
    },
    sink: {
      data: 'graph',
      stream: Neo4jSinkStreamSchema,
      idempotentBy:
        'node key property (MERGE on labels + keyProperty) and relationship id property',
    },
    discover: false,
    classifyError: classifyNeo4jError,
    async connect({ credentials, params }: { credentials: Neo4jCredentials; params: Neo4jParams }) {
      if (options.driver) return new Neo4jConnection(options.driver, params.database, false)
      const driver = neo4j.driver(params.url, authToken(credentials), {
        ...options.driverConfig,
        useBigInt: true,
        ...(params.connectionTimeoutMs !== undefined
          ? { connectionTimeout: params.connectionTimeoutMs }
          : {}),
        ...(params.maxConnectionPoolSize !== undefined
          ? { maxConnectionPoolSize: params.maxConnectionPoolSize }
          : {}),
      })
      return new Neo4jConnection(driver, params.database, true)
    },
  })
}

export const neo4jProvider = createNeo4jProvider()
export type Neo4jProvider = typeof neo4jProvider
