import { AdminError, ErrorCodes } from '../../protocol/errors.js'
import { parseShareTopic } from '../../protocol/topics.js'
import type { LevelPersistence } from '../persistence/level-persistence.js'
import type { PublishPacket } from '../types/mqtt.js'
import type { RetainedView } from './admin-api.js'
import { payloadText } from './payload-text.js'

interface RetainedRecord { topic: string, payload: Buffer | string, qos: number }

/** Retained messages (`/api/retained`): listed from the store's retained stream, deleted the MQTT way. */
export class RetainedMessages {
  readonly #persistence: LevelPersistence
  readonly #publish: (packet: PublishPacket) => Promise<void>

  constructor (persistence: LevelPersistence, publish: (packet: PublishPacket) => Promise<void>) {
    this.#persistence = persistence
    this.#publish = publish
  }

  /** At most `limit`, matching `filter` (MQTT filter rules, `$` topics only by a filter naming them [MQTT-4.7.2-1]), in topic order. */
  async list (filter: string, limit: number): Promise<RetainedView[]> {
    checkFilter(filter)
    const records = await this.#matching(filter)
    records.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0))
    return records.slice(0, limit).map((record) => {
      const { bytes, payload, payloadBase64, truncated } = payloadText(record.payload)
      const view: RetainedView = { topic: record.topic, qos: record.qos, bytes, payload }
      if (payloadBase64 !== undefined) view.payloadBase64 = payloadBase64
      if (truncated === true) view.truncated = true
      return view
    })
  }

  /**
   * Clears the topic's retained message as any MQTT client would: an empty
   * retained PUBLISH from the broker [MQTT-3.3.1-10], which also reaches
   * current subscribers as an empty message (Aedes forwards it).
   */
  async delete (topic: string): Promise<void> {
    if (typeof topic !== 'string' || topic === '' || /[+#\0]/.test(topic)) {
      throw new AdminError(ErrorCodes.REQUEST_INVALID, `topic must be a topic name without wildcards, got ${JSON.stringify(topic)}`,
        { issues: [{ path: '/topic', message: 'must be a topic name without wildcards', keyword: 'topic' }] })
    }
    const found = (await this.#matching(topic)).some((r) => r.topic === topic)
    if (!found) throw new AdminError(ErrorCodes.RETAINED_NOT_FOUND, `no retained message on "${topic}"`)
    await this.#publish({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false })
  }

  async #matching (filter: string): Promise<RetainedRecord[]> {
    const records: RetainedRecord[] = []
    for await (const packet of this.#persistence.createRetainedStream(filter)) records.push(packet as RetainedRecord)
    return records
  }
}

function checkFilter (filter: string): void {
  const issue = filterIssue(filter)
  if (issue !== null) {
    throw new AdminError(ErrorCodes.REQUEST_INVALID, `filter ${JSON.stringify(filter)}: ${issue}`,
      { issues: [{ path: '/filter', message: issue, keyword: 'filter' }] })
  }
}

/** The reason a filter is not a valid MQTT topic filter, or null. */
function filterIssue (filter: string): string | null {
  if (typeof filter !== 'string' || filter === '') return 'must be a non-empty topic filter'
  if (filter.includes('\0')) return 'must not contain NUL'
  // The share parser checks the filter part with the MQTT rules [MQTT-4.7.1-2] [MQTT-4.7.1-3].
  const parsed = parseShareTopic(`$share/x/${filter}`)
  return typeof parsed === 'string' ? parsed : null
}
