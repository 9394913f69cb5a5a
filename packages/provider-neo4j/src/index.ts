export { Neo4jConnection } from './neo4j-connection.js'
export { classifyNeo4jError } from './neo4j-errors.js'
export {
  createNeo4jProvider,
  type Neo4jProvider,
  type Neo4jProviderOptions,
  neo4jProvider,
} from './neo4j-provider.js'
export {
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
export { fromNeo4j, toNeo4j } from './neo4j-values.js'
export { VERSION } from './version.js'
