import { describe, expect, it } from 'vitest'
import { FirstLevels } from '../broker/shared/first-levels.js'

// The pre-check before the shared groups' trie (broker/shared/first-levels.ts):
// it may say "maybe" too often, never "no" for a topic a filter matches.
describe('shared groups: first-level pre-check', () => {
  it('says no only when no filter can match', () => {
    const levels = new FirstLevels()
    expect(levels.mayMatch('tasks/thumbnail')).toBe(false)
    levels.add('tasks/thumbnail')
    expect(levels.mayMatch('tasks/thumbnail')).toBe(true)
    expect(levels.mayMatch('tasks')).toBe(true) // a maybe: the trie decides
    expect(levels.mayMatch('$fleetq/results/p/1')).toBe(false)
    expect(levels.mayMatch('devices/1')).toBe(false)
    levels.add('sensors')
    expect(levels.mayMatch('sensors')).toBe(true)
    levels.add('/leading')
    expect(levels.mayMatch('/leading')).toBe(true)
  })

  it('lets a leading wildcard match every topic but $ ones [MQTT-4.7.2-1]', () => {
    const levels = new FirstLevels()
    levels.add('+/status')
    expect(levels.mayMatch('devices/status')).toBe(true)
    expect(levels.mayMatch('/status')).toBe(true)
    expect(levels.mayMatch('$SYS/status')).toBe(false)
    levels.add('$SYS/#')
    expect(levels.mayMatch('$SYS/status')).toBe(true)
    levels.remove('+/status')
    levels.add('#')
    expect(levels.mayMatch('anything/at/all')).toBe(true)
    levels.remove('#')
    expect(levels.mayMatch('anything/at/all')).toBe(false)
  })

  it('counts filters that share a first level, so removing one keeps the other', () => {
    const levels = new FirstLevels()
    levels.add('tasks/a')
    levels.add('tasks/b')
    levels.remove('tasks/a')
    expect(levels.mayMatch('tasks/b')).toBe(true)
    levels.remove('tasks/b')
    expect(levels.mayMatch('tasks/b')).toBe(false)
    levels.remove('tasks/b') // removing one never added is a no-op
    expect(levels.mayMatch('tasks/b')).toBe(false)
  })
})
