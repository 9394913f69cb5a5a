export {
  type MongoEmulator,
  type MongoEmulatorOptions,
  MongoEmulatorServer,
  startMongoEmulator,
} from './mongodb/index.js'
export {
  type EmulatedNode,
  type EmulatedRelationship,
  type Neo4jEmulator,
  type Neo4jEmulatorAuth,
  type Neo4jEmulatorOptions,
  type Neo4jGraphView,
  startNeo4jEmulator,
} from './neo4j/index.js'
export {
  type PineconeEmulator,
  type PineconeEmulatorOptions,
  PineconeEmulatorServer,
  type PineconeFault,
  type PineconeRequestLog,
  startPineconeEmulator,
} from './pinecone/index.js'
export {
  SearchApiError,
  type SearchEmulator,
  type SearchEmulatorOptions,
  SearchEmulatorServer,
  type SearchFault,
  type SearchFlavor,
  type SearchRequestLog,
  startSearchEmulator,
} from './search/index.js'
