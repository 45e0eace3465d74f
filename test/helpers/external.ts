import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { kafkaLibDir } from '../../src/sandbox/kafka-broker.js';

const run = promisify(execFile);

/** kcat (librdkafka): an independent, non-JavaScript Kafka client. */
export async function kcat(args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run('kcat', args, { maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = execFile('kcat', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
    child.stdin?.end(input);
  });
}

/** The broker's own Java console consumer, from the same jars the sandbox runs. */
export async function javaConsoleConsume(
  brokers: string,
  topic: string,
  maxMessages: number,
): Promise<string> {
  const { stdout } = await run(
    'java',
    [
      '-Xmx256m',
      '-cp',
      `${kafkaLibDir()}/*`,
      'org.apache.kafka.tools.consumer.ConsoleConsumer',
      '--bootstrap-server',
      brokers,
      '--topic',
      topic,
      '--from-beginning',
      '--max-messages',
      String(maxMessages),
      '--timeout-ms',
      '30000',
      '--property',
      'print.key=true',
      '--property',
      'print.headers=true',
      '--property',
      'print.partition=true',
      '--property',
      'key.separator=|',
    ],
    { maxBuffer: 64 * 1024 * 1024, timeout: 90_000 },
  );
  return stdout;
}
