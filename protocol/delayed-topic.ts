import { isShareTopic } from './share-topic.js'

/**
 * `$delayed/{seconds}/{topic}`: publish `{topic}` later, the convention EMQX
 * uses. Seconds may carry up to three decimals (millisecond steps, which the
 * client library's retry backoff needs); EMQX takes whole seconds only, and
 * every whole-second topic means the same here.
 */
export const DELAYED_PREFIX = '$delayed/'

/** EMQX's bound (2^32 / 1000 s, about 49.7 days); `delayed.maxDelaySeconds` changes it. */
export const DEFAULT_MAX_DELAY_SECONDS = 4_294_967

export type DelayedTopicRefusal = 'delay-not-a-number' | 'delay-too-long' | 'target-missing' | 'target-invalid'

export type ParsedDelayedTopic =
  | { ok: true, delayMs: number, target: string }
  /** `target`: what follows `$delayed/{seconds}/`, possibly empty (whom to check the publisher's rights against). */
  | { ok: false, reason: DelayedTopicRefusal, message: string, target: string }

export function isDelayedTopic (topic: string): boolean {
  return topic.startsWith(DELAYED_PREFIX)
}

const SECONDS = /^(0|[1-9]\d{0,9})(\.\d{1,3})?$/

export function parseDelayedTopic (topic: string, maxDelaySeconds: number): ParsedDelayedTopic {
  const rest = topic.slice(DELAYED_PREFIX.length)
  const slash = rest.indexOf('/')
  const seconds = slash === -1 ? rest : rest.slice(0, slash)
  const target = slash === -1 ? '' : rest.slice(slash + 1)
  if (!SECONDS.test(seconds)) {
    return { ok: false, reason: 'delay-not-a-number', message: `delay must be a number of seconds (up to 3 decimals), got "${seconds}"`, target }
  }
  const delayMs = Math.round(Number(seconds) * 1000)
  if (delayMs > maxDelaySeconds * 1000) {
    return { ok: false, reason: 'delay-too-long', message: `delay must be at most ${maxDelaySeconds} s, got ${seconds} s`, target }
  }
  if (target === '') return { ok: false, reason: 'target-missing', message: 'the target topic after $delayed/{seconds}/ is empty', target }
  // A delayed message of a delayed message, or a subscription name, is not a topic.
  if (isDelayedTopic(target) || isShareTopic(target)) {
    return { ok: false, reason: 'target-invalid', message: `cannot delay a publish to "${target}"`, target }
  }
  return { ok: true, delayMs, target }
}

/** The topic that publishes `topic` after `delayMs` (rounded up to whole milliseconds). */
export function delayedTopic (delayMs: number, topic: string): string {
  const ms = Math.max(0, Math.ceil(delayMs))
  const seconds = `${Math.floor(ms / 1000)}${ms % 1000 === 0 ? '' : `.${String(ms % 1000).padStart(3, '0')}`}`
  return `${DELAYED_PREFIX}${seconds}/${topic}`
}
