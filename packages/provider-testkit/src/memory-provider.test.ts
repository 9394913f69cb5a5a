import { runMemoryConformance } from './memory-fixture.js'

// The reference provider passes the whole kit.
runMemoryConformance('memory')
