/**
 * fleetq client: MQTT publish/subscribe, task submission and workers.
 * See docs/client.md.
 */
export { connect, Client } from './client.js'
export type { ConnectOptions, ClientEvents, PublishOptions, SubscribeOptions, MessageHandler } from './client.js'
export type { Message } from './message.js'
export { TaskHandle } from './producer.js'
export { Schedules } from './schedules.js'
export type { PayloadOf, TaskHandleEvents } from './producer.js'
export type { SubmitManyOptions, SubmitOptions } from './submit-options.js'
export { createWorker, Worker } from './worker.js'
export type { WorkerOptions, WorkerEvents, CloseOptions } from './worker.js'
export type { TaskContext, TaskHandler } from './task-runner.js'

// The wire contract, shared with the broker (protocol/).
export type { ScheduleInfo, ScheduleInput, CatchUp } from '../protocol/schedules.js'
export { computeBackoff } from '../protocol/backoff.js'
export type { BackoffOptions } from '../protocol/backoff.js'
export { envelopeDefaults } from '../protocol/envelope.js'
export type { TaskResultMessage, DeadLetter, DeadLetterReason, GateDeadLetter, GateDeadLetterReason } from '../protocol/messages.js'
export * from '../protocol/errors.js'
export type { TaskEnvelope, TaskPayloads, TaskType } from '../protocol/generated/task-types.js'
export { TaskSchemas } from '../protocol/schema-registry.js'
export {
  taskTopic, taskShareFilter, resultTopic, deadLetterTopic, delayedTopic, matchTopic,
  DEAD_LETTER_GROUP, DELAYED_DEAD_LETTER_TOPIC, PREFETCH_TOPIC, SCHEDULE_REQUEST_TOPIC
} from '../protocol/topics.js'
