import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-not-idempotent', 'not-idempotent')
