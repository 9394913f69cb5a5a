import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-partition-resume-escapes', 'partition-resume-escapes')
