import { createRequire } from 'node:module';
import {
  KafkaJSConnectionError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNumberOfRetriesExceeded,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import {
  isCoordinatorNotReady,
  retryWhileCoordinatorStarts,
  startupFailure,
} from '../../../src/stages/consume/startup-retry.js';

// The function kafkajs itself turns a broker's error code into an error with (its own protocol table).
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  createErrorFromCode: (code: number) => Error & { type: string; retriable: boolean };
};

const LOADING = 14; // GROUP_LOAD_IN_PROGRESS: "The coordinator is loading …"

describe('isCoordinatorNotReady', () => {
  it('recognises the coordinator codes a just-started broker answers with, also wrapped by kafkajs retries', () => {
    expect(createErrorFromCode(LOADING).message).toMatch(/coordinator is loading/);
    for (const code of [14, 15, 16]) expect(isCoordinatorNotReady(createErrorFromCode(code))).toBe(true);
    const exhausted = new KafkaJSNumberOfRetriesExceeded(createErrorFromCode(LOADING), {
      retryCount: 5,
      retryTime: 1_000,
    });
    expect(isCoordinatorNotReady(exhausted)).toBe(true);
    // Typed without arguments, but kafkajs constructs it with a message.
    const NotFound = KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error;
    expect(isCoordinatorNotReady(new NotFound('Failed to find group coordinator'))).toBe(true);
  });

  it('leaves every other error alone, retriable or not', () => {
    expect(isCoordinatorNotReady(createErrorFromCode(3))).toBe(false); // UNKNOWN_TOPIC_OR_PARTITION
    expect(isCoordinatorNotReady(createErrorFromCode(25))).toBe(false); // UNKNOWN_MEMBER_ID
    expect(isCoordinatorNotReady(new KafkaJSConnectionError('Connection refused'))).toBe(false);
    expect(isCoordinatorNotReady(new Error('The coordinator is loading'))).toBe(false);
    expect(isCoordinatorNotReady(null)).toBe(false);
  });
});

describe('retryWhileCoordinatorStarts', () => {
  const options = { timeoutMs: 5_000, logger: silentLogger, action: 'testing', initialDelayMs: 10 };

  it('tries again while the coordinator is loading, then returns the result', async () => {
    let attempts = 0;
    const result = await retryWhileCoordinatorStarts(async () => {
      attempts++;
      if (attempts < 3) throw createErrorFromCode(LOADING);
      return 'offsets';
    }, options);
    expect(result).toBe('offsets');
    expect(attempts).toBe(3);
  });

  it('throws any other error at once', async () => {
    let attempts = 0;
    const refused = createErrorFromCode(30); // GROUP_AUTHORIZATION_FAILED
    await expect(
      retryWhileCoordinatorStarts(async () => {
        attempts++;
        throw refused;
      }, options),
    ).rejects.toBe(refused);
    expect(attempts).toBe(1);
  });

  it('gives up within its bound with the last coordinator error', async () => {
    let attempts = 0;
    const started = Date.now();
    const err = retryWhileCoordinatorStarts(
      async () => {
        attempts++;
        throw createErrorFromCode(LOADING);
      },
      { ...options, timeoutMs: 300, initialDelayMs: 20 },
    );
    await expect(err).rejects.toMatchObject({ type: 'GROUP_LOAD_IN_PROGRESS' });
    expect(Date.now() - started).toBeLessThan(1_000);
    // 20, 40, 80, 160 ms waits fit in 300 ms; the backoff grows, so a few attempts, not hundreds.
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(5);
  });
});

describe('startupFailure', () => {
  it('reports a coordinator still not ready at the bound as transient (exit 75), whatever kafkajs called it', () => {
    const NotFound = KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error;
    for (const err of [createErrorFromCode(LOADING), new NotFound('Failed to find group coordinator')]) {
      const failure = startupFailure(err, ['127.0.0.1:9092'], 'reading offsets');
      expect(failure).toMatchObject({ code: 'E_KAFKA', retryable: true, exitCode: ExitCode.TempFailure });
      expect(failure.message).toMatch(/^Kafka failed while reading offsets: /);
    }
  });

  it('leaves other errors to the usual mapping', () => {
    const refused = startupFailure(createErrorFromCode(30), ['127.0.0.1:9092'], 'reading offsets');
    expect(refused).toMatchObject({ code: 'E_KAFKA', retryable: false, exitCode: ExitCode.Failure });
  });
});
