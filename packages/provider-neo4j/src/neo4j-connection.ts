import { type Connection, ProviderError, type ReadOptions } from '@nvisy/provider-core'
import neo4j, { type AuthToken, type Config, type Driver } from 'neo4j-driver'
import type {
  Neo4jContext,
  Neo4jCredentials,
  Neo4jParams,
  Neo4jSinkStream,
  Neo4jStream,
} from './neo4j-schemas.js'
import { Neo4jSink } from './neo4j-sink.js'
import { type Neo4jTarget, readGraph } from './neo4j-source.js'

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

/** A Neo4j connection: one driver, and the database its sessions use. */
export class Neo4jConnection implements Connection<Neo4jStream, Neo4jContext, Neo4jSinkStream> {
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

  /** Create a driver from validated credentials and params (`driverConfig` under them). */
  static open(
    credentials: Neo4jCredentials,
    params: Neo4jParams,
    driverConfig: Config | undefined,
  ): Neo4jConnection {
    const driver = neo4j.driver(params.url, authToken(credentials), {
      ...driverConfig,
      useBigInt: true,
      ...(params.connectionTimeoutMs !== undefined
        ? { connectionTimeout: params.connectionTimeoutMs }
        : {}),
      ...(params.maxConnectionPoolSize !== undefined
        ? { maxConnectionPoolSize: params.maxConnectionPoolSize }
        : {}),
    })
    return new Neo4jConnection(driver, params.database, true)
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
