export { type Expr, parseCypher, type Statement } from './cypher.js'
export { CypherError } from './graph.js'
export { Struct, type Value as PackStreamValue } from './packstream.js'
export {
  type EmulatedNode,
  type EmulatedRelationship,
  type Neo4jEmulator,
  type Neo4jEmulatorAuth,
  type Neo4jEmulatorOptions,
  type Neo4jGraphView,
  startNeo4jEmulator,
} from './server.js'
