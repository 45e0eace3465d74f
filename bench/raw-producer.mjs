// Baseline for `publish`: the least a kafkajs producer must do with the same file — read lines,
// take each envelope's key, send batches of 2000 with the idempotent producer and acks=all, awaiting
// each send (the same client settings as syncctl). Prints {"records": N}. With `headers` it also sets
// the five headers syncctl sets on every record (kafkajs encodes each header in its own 512-byte
// buffer, which costs it more than the value does).
// node bench/raw-producer.mjs BROKERS TOPIC FILE [headers]
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Kafka, Partitioners, logLevel } from 'kafkajs';

const [brokers, topic, file, withHeaders] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'bench-raw', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner,
  idempotent: true,
  maxInFlightRequests: 1,
});
await producer.connect();
let batch = [];
let records = 0;
const send = async () => {
  await producer.send({ topic, acks: -1, messages: batch });
  records += batch.length;
  batch = [];
};
for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
  if (line === '') continue;
  const e = JSON.parse(line);
  const headers = withHeaders && {
    'content-type': 'application/json',
    'syncctl-schema-version': String(e.schemaVersion),
    'syncctl-entity': e.entity,
    'syncctl-op': e.op,
    'syncctl-idempotency-key': e.idempotencyKey,
  };
  batch.push(headers ? { key: e.id, value: line, headers } : { key: e.id, value: line });
  if (batch.length >= 2000) await send();
}
if (batch.length > 0) await send();
await producer.disconnect();
console.log(JSON.stringify({ records }));
