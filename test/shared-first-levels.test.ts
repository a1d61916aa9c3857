import { describe, expect, it } from 'vitest'
import { FirstLevels } from '../broker/shared/first-levels.js'
import { topicMatches } from '../protocol/topics.js'

// The pre-check before the shared groups' trie (broker/shared/first-levels.ts):
// it may say "maybe" too often, never "no" for a topic a filter matches.
describe('shared groups: first-level pre-check', () => {
  it('says no only when no filter can match', () => {
    const levels = new FirstLevels()
    expect(levels.mayMatch('tasks/thumbnail')).toBe(false)
    levels.add('tasks/thumbnail')
    expect(levels.mayMatch('tasks/thumbnail')).toBe(true)
    expect(levels.mayMatch('tasks')).toBe(false) // 'tasks/thumbnail' has two literal levels
    expect(levels.mayMatch('tasks/thumbnail/extra')).toBe(true) // a maybe: the trie decides
    expect(levels.mayMatch('tasks/other')).toBe(false)
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

  it('tells a task result from the dead letters, which share its first level', () => {
    const levels = new FirstLevels()
    levels.add('$fleetq/dead/+')
    expect(levels.mayMatch('$fleetq/dead/thumbnail')).toBe(true)
    expect(levels.mayMatch('$fleetq/results/producer-1/task-1')).toBe(false)
    // `#` and `+` in the second level: the first level alone decides, and `a/#` matches `a` [MQTT-4.7.1-2]
    levels.add('jobs/#')
    expect(levels.mayMatch('jobs')).toBe(true)
    expect(levels.mayMatch('jobs/any/depth')).toBe(true)
    levels.add('metrics/+/cpu')
    expect(levels.mayMatch('metrics/host-1/cpu')).toBe(true)
    // empty levels are literal levels too
    levels.add('a//b')
    expect(levels.mayMatch('a//b')).toBe(true)
    expect(levels.mayMatch('a/x/b')).toBe(false)
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

  it('never says no for a topic a filter matches: every filter and topic of up to three levels', () => {
    const words = ['a', 'b', '', '$x']
    const sequences = (alphabet: string[], max: number): string[][] => {
      const all: string[][] = [[]]
      for (let depth = 1; depth <= max; depth++) for (const prefix of all.filter((p) => p.length === depth - 1)) for (const w of alphabet) all.push([...prefix, w])
      return all.filter((p) => p.length > 0)
    }
    // '#' only last [MQTT-4.7.1-2]
    const filters = sequences([...words, '+', '#'], 3).filter((levels) => levels.every((l, i) => l !== '#' || i === levels.length - 1)).map((l) => l.join('/'))
    const topics = sequences(words, 3).map((l) => l.join('/'))
    let matched = 0
    for (const filter of filters) {
      const levels = new FirstLevels()
      levels.add(filter)
      for (const topic of topics) {
        if (!topicMatches(filter, topic)) continue
        matched++
        expect(levels.mayMatch(topic), `${filter} matches ${topic}`).toBe(true)
      }
    }
    expect(matched).toBeGreaterThan(500)
  })
})
