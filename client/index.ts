/**
 * fleetq client: MQTT publish/subscribe, task submission and workers.
 * See docs/client.md.
 */
export { connect, Client } from './client.js'
export type { ConnectOptions, ClientEvents, PublishOptions, SubscribeOptions, MessageHandler } from './client.js'
export type { Message } from './message.js'
export { TaskHandle } from './producer.js'
export { Schedules } from './schedules.js'
export type { ScheduleInfo, ScheduleInput, CatchUp } from '../broker/scheduler/schedule.js'
export { ScheduleError } from '../broker/errors.js'
export type { PayloadOf, TaskHandleEvents } from './producer.js'
export type { SubmitOptions } from './envelope.js'
export { createWorker, Worker } from './worker.js'
export type { WorkerOptions, WorkerEvents, CloseOptions } from './worker.js'
export type { TaskContext, TaskHandler } from './task-runner.js'
export { computeBackoff } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export type { TaskResultMessage, DeadLetter, DeadLetterReason } from './messages.js'
export {
  ClientErrorCodes,
  FleetqClientError,
  TaskValidationError,
  UnknownTaskTypeError,
  TaskFailedError,
  TaskTimeoutError,
  UnrecoverableError
} from './errors.js'
export type { ClientErrorCode, ValidationIssue } from './errors.js'
export type { TaskEnvelope, TaskPayloads, TaskType } from './generated/task-types.js'
export { TaskSchemas } from './task-schemas.js'
