import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-closed-last-partition', 'closed-last-partition')
