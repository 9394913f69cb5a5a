export {
  type MongoEmulator,
  type MongoEmulatorOptions,
  MongoEmulatorServer,
  startMongoEmulator,
} from './server.js'
