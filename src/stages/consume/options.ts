import { UsageError } from '../../errors.js';
import { DEFAULT_TOPICS } from '../../settings/index.js';
import { CONSUME_DEFAULTS, type ConsumeOptions, type ConsumeTopics } from './types.js';

/** The options a run uses, with defaults applied. */
export type ConsumeSettings = ReturnType<typeof resolveSettings>;

/** Applies the defaults; bad values are usage errors before anything connects. */
export function resolveSettings(options: ConsumeOptions) {
  const topics: ConsumeTopics = {
    customers: options.customerTopic ?? DEFAULT_TOPICS.customers,
    products: options.productTopic ?? DEFAULT_TOPICS.products,
    deadLetter: options.deadLetterTopic ?? DEFAULT_TOPICS.deadLetter,
  };
  if (topics.customers === topics.products)
    throw new UsageError('the customer and product topics must differ');
  if (topics.deadLetter === topics.customers || topics.deadLetter === topics.products) {
    throw new UsageError('the dead-letter topic must differ from the data topics');
  }
  const batchSize = options.batchSize ?? CONSUME_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError(`--batch-size must be ≥ 1, got ${batchSize}`);
  const sessionTimeoutMs = options.sessionTimeoutMs ?? CONSUME_DEFAULTS.sessionTimeoutMs;
  if (sessionTimeoutMs < 6_000) throw new UsageError('--session-timeout must be at least 6 seconds');
  const maxDeliveryDelayMs = options.maxDeliveryDelayMs ?? CONSUME_DEFAULTS.maxDeliveryDelayMs;
  if (!Number.isFinite(maxDeliveryDelayMs) || maxDeliveryDelayMs < 0) {
    throw new UsageError(`--max-delivery-delay must be ≥ 0 seconds, got ${maxDeliveryDelayMs / 1000}`);
  }
  const deliveryBacklog = options.deliveryBacklog ?? batchSize * CONSUME_DEFAULTS.backlogBatches;
  if (!Number.isInteger(deliveryBacklog) || deliveryBacklog < 1) {
    throw new UsageError(`the delivery backlog must be ≥ 1 customer, got ${deliveryBacklog}`);
  }
  return {
    group: options.group ?? CONSUME_DEFAULTS.group,
    topics,
    dataTopics: [topics.customers, topics.products],
    once: options.once ?? false,
    batchSize,
    idleTimeoutMs: options.idleTimeoutMs ?? CONSUME_DEFAULTS.idleTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? CONSUME_DEFAULTS.shutdownTimeoutMs,
    leaseMs: options.leaseMs ?? CONSUME_DEFAULTS.leaseMs,
    sessionTimeoutMs,
    maxDeliveryDelayMs,
    deliveryBacklog,
    startupRetryMs: options.startupRetryMs ?? CONSUME_DEFAULTS.startupRetryMs,
  };
}
