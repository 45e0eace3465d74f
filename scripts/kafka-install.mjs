// Resolves the Kafka broker jars into the cache before tests, the demo or benchmarks need them.
import { installKafka } from '../dist/src/sandbox/kafka-broker.js';

const dir = installKafka((line) => process.stderr.write(`${line}\n`));
process.stderr.write(`Apache Kafka jars ready in ${dir}\n`);
