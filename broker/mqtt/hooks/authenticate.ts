import type { Client } from 'aedes'
import type { Logger } from 'pino'
import { isDelayedTopic, isShareTopic, parseDelayedTopic, SYS_PREFIX } from '../../../protocol/topics.js'
import { BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED, type AccessPolicy, type Authentication } from '../access.js'
import type { ClientLimits } from '../client-limits.js'
import type { HookGuard } from '../guard.js'
import { connFields } from '../internals/conn-ids.js'
import { illFormedTopic } from '../topic-validity.js'
import { clientInfo, setUsername } from './util.js'

/** CONNACK return code 0x03, server unavailable (MQTT 3.1.1 §3.2.2.3): a failed authenticate is our fault, not the client's. */
const SERVER_UNAVAILABLE = 3

type Done = (error: (Error & { returnCode: number }) | null, success: boolean | null) => void

export interface AuthenticateDeps {
  guard: HookGuard
  access: AccessPolicy
  limits: Pick<ClientLimits, 'topicRefusal'>
  logger: Logger
  /** The will topic of the client's CONNECT, if it has one (kept by the adapter's preConnect). */
  willOf: (client: Client) => string | undefined
}

/**
 * Aedes's `authenticate`: the access policy's verdict, the user it accepted
 * recorded for every later check, then the CONNECT's will checked as a
 * PUBLISH of that user would be (CONNACK 0x05 if refused). Inside the hook
 * guard: a failure answers CONNACK 0x03.
 */
export function createAuthenticate ({ guard, access, limits, logger, willOf }: AuthenticateDeps) {
  /**
   * A will is checked as a PUBLISH of its client would be, at CONNECT, as
   * Mosquitto does: it may be published long after, by a broker that
   * restarted and no longer knows who left it.
   */
  async function willAllowed (client: Client, topic: string): Promise<boolean> {
    let allowed = illFormedTopic(topic) === null && limits.topicRefusal(client.id, topic) === null &&
      !topic.startsWith(SYS_PREFIX) && !isShareTopic(topic)
    if (allowed) {
      const target = isDelayedTopic(topic) ? parseDelayedTopic(topic, Number.MAX_SAFE_INTEGER).target || topic : topic
      const verdict = access.authorizePublish(clientInfo(client), target)
      allowed = typeof verdict === 'boolean' ? verdict : await verdict
    }
    if (!allowed) logger.info({ ...connFields(client), topic }, 'CONNECT refused: its will may not be published')
    return allowed
  }

  return function authenticate (client: Client, username: Readonly<string | undefined>, password: Readonly<Buffer | undefined>, done: Done): void {
    guard.async('authenticate', client, async (): Promise<boolean | Authentication> => {
      const pending = access.authenticate(clientInfo(client), username, password)
      const verdict = pending instanceof Promise ? await pending : pending
      if (verdict === false || (typeof verdict === 'object' && !verdict.accepted)) return verdict
      // Before the CONNACK: the will's check and the restored subscriptions' already see it.
      if (typeof verdict === 'object' && verdict.username !== undefined) setUsername(client, verdict.username)
      const will = willOf(client)
      if (will !== undefined && !await willAllowed(client, will)) return { accepted: false, returnCode: NOT_AUTHORIZED }
      return verdict
    }, (answer) => {
      if (typeof answer === 'boolean') {
        done(null, answer)
      } else if (answer.accepted) {
        done(null, true)
      } else {
        done(Object.assign(new Error(answer.returnCode === BAD_USERNAME_OR_PASSWORD ? 'bad user name or password' : 'not authorized'),
          { returnCode: answer.returnCode }), false)
      }
    }, () => {
      done(Object.assign(new Error('server unavailable'), { returnCode: SERVER_UNAVAILABLE }), false)
    })
  }
}
