import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { Config, Driver } from 'neo4j-driver'
import { Neo4jConnection } from './neo4j-connection.js'
import { classifyNeo4jError } from './neo4j-errors.js'
import {
  Neo4jContextSchema,
  type Neo4jCredentials,
  Neo4jCredentialsSchema,
  type Neo4jParams,
  Neo4jParamsSchema,
  Neo4jSinkStreamSchema,
  Neo4jStreamSchema,
} from './neo4j-schemas.js'
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
      return Neo4jConnection.open(credentials, params, options.driverConfig)
    },
  })
}

export const neo4jProvider = createNeo4jProvider()
export type Neo4jProvider = typeof neo4jProvider
