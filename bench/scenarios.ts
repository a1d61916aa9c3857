/**
 * The benchmark scenarios. Add one by adding an entry to {@link scenarios};
 * the runner needs nothing else.
 */
export interface Scenario {
  name: string
  description: string
  qos: 0 | 1
  publishers (counts: ScenarioCounts): number
  subscribers (counts: ScenarioCounts): number
  publishTopic (prefix: string, publisher: number): string
  subscribeFilter (prefix: string, subscriber: number): string
  /** How many subscribers receive each published message. */
  copiesPerMessage (subscribers: number): number
  /** The `$share` group the subscribers join, if any (mqload's `--share`). */
  shareGroup?: string
}

/** The `--publishers` / `--subscribers` flags. */
export interface ScenarioCounts {
  publishers: number
  subscribers: number
}

function fanIn (qos: 0 | 1): Scenario {
  return {
    name: `qos${qos}-fanin`,
    description: `N publishers, each on its own topic, one subscriber on a + wildcard, QoS ${qos}`,
    qos,
    publishers: (counts) => counts.publishers,
    subscribers: () => 1,
    publishTopic: (prefix, publisher) => `${prefix}/in/${publisher}`,
    // A wildcard, as a fleet's collector would use (devices/+/telemetry).
    subscribeFilter: (prefix) => `${prefix}/in/+`,
    copiesPerMessage: () => 1
  }
}

function fanOut (qos: 0 | 1): Scenario {
  return {
    name: `qos${qos}-fanout`,
    description: `one publisher, M subscribers on the same topic, QoS ${qos}`,
    qos,
    publishers: () => 1,
    subscribers: (counts) => counts.subscribers,
    publishTopic: (prefix) => `${prefix}/out`,
    subscribeFilter: (prefix) => `${prefix}/out`,
    copiesPerMessage: (subscribers) => subscribers
  }
}

/**
 * A work queue: 2 publishers, M members of one `$share` group,
 * QoS 1; each message reaches exactly one member. Mosquitto 2 offers `$share`
 * to MQTT 3.1.1 clients too, so the comparison is like for like (except that
 * fleetq's group is a durable queue: stored until the member's PUBACK).
 */
function sharedQueue (): Scenario {
  return {
    name: 'qos1-shared',
    description: '2 publishers, M members of one $share group, QoS 1, each message to one member',
    qos: 1,
    publishers: () => 2,
    subscribers: (counts) => counts.subscribers,
    publishTopic: (prefix, publisher) => `${prefix}/jobs/${publisher}`,
    subscribeFilter: (prefix) => `$share/bench/${prefix}/jobs/+`,
    copiesPerMessage: () => 1,
    shareGroup: 'bench'
  }
}

export const scenarios: readonly Scenario[] = [fanIn(0), fanIn(1), fanOut(0), fanOut(1), sharedQueue()]

/** What the comparison with Mosquitto measures: what `--compare` runs with mqload by default. */
export const defaultScenarioNames: readonly string[] = ['qos0-fanin', 'qos1-fanin', 'qos1-fanout', 'qos1-shared']

export function scenarioNames (): string[] {
  return scenarios.map((s) => s.name)
}

export function findScenario (name: string): Scenario {
  const found = scenarios.find((s) => s.name === name)
  if (found === undefined) throw new Error(`unknown scenario ${name}`)
  return found
}
