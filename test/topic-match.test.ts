import { describe, expect, it } from 'vitest'
import { matchFilter, topicMatches } from '../protocol/topic-match.js'

// topicMatches walks the levels in place (protocol/topic-match.ts); matchFilter
// splits. They must agree on every filter and topic, MQTT 3.1.1 §4.7.
const levels = ['a', 'b', '', '$x', 'ab']
const filterLevels = [...levels, '+', '#']

function names (parts: string[], depth: number): string[] {
  const out: string[] = []
  const walk = (prefix: string[]): void => {
    if (prefix.length > 0) out.push(prefix.join('/'))
    if (prefix.length === depth) return
    for (const p of parts) walk([...prefix, p])
  }
  walk([])
  return out
}

describe('topicMatches', () => {
  it('agrees with matchFilter on every filter and topic up to three levels', () => {
    const topics = names(levels, 3)
    const filters = names(filterLevels, 3).filter((f) => !/#./.test(f)) // '#' only last
    let matched = 0
    for (const filter of filters) {
      for (const topic of topics) {
        const expected = matchFilter(filter, topic) !== null
        if (topicMatches(filter, topic) !== expected) throw new Error(`${filter} vs ${topic}: expected ${String(expected)}`)
        if (expected) matched++
      }
    }
    expect(matched).toBeGreaterThan(1000)
  })

  it('matches the parent level with # and keeps leading wildcards off $ topics [MQTT-4.7.1-2] [MQTT-4.7.2-1]', () => {
    expect(topicMatches('sport/#', 'sport')).toBe(true)
    expect(topicMatches('sport/+', 'sport')).toBe(false)
    expect(topicMatches('sport/+', 'sport/')).toBe(true)
    expect(topicMatches('#', '$SYS/x')).toBe(false)
    expect(topicMatches('+/x', '$SYS/x')).toBe(false)
    expect(topicMatches('$SYS/#', '$SYS/x')).toBe(true)
    expect(topicMatches('a/b', 'a/bc')).toBe(false)
    expect(topicMatches('a', 'a/b')).toBe(false)
  })
})
