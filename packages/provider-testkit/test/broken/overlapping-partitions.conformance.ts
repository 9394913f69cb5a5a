import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-overlapping-partitions', 'overlapping-partitions')
