import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-repeat-on-resume', 'repeat-on-resume')
