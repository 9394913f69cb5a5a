import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-leaks-password', 'leaks-password')
