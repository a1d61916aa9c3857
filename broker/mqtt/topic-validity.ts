/**
 * Why a topic name or filter a client sent is not well-formed UTF-8, or null.
 * mqtt-packet decodes strings leniently, turning bytes that are not UTF-8
 * into U+FFFD, so a U+FFFD in a topic is taken for ill-formed input
 * [MQTT-1.5.3-1]; U+0000 is never allowed [MQTT-1.5.3-2]. A client that
 * meant a literal U+FFFD is refused too: no device has a reason to.
 */
export function illFormedTopic (topic: string): string | null {
  // indexOf is native and fast: this runs on every PUBLISH.
  if (topic.indexOf('\u0000') >= 0) return 'a topic must not contain U+0000 [MQTT-1.5.3-2]'
  if (topic.indexOf('\uFFFD') >= 0) return 'a topic must be well-formed UTF-8 [MQTT-1.5.3-1]'
  return null
}
