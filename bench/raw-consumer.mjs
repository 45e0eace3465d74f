// Baseline for `consume`: the least a kafkajs consumer must do with the same topics — fetch from the
// beginning in a fresh group, eachBatch, JSON.parse of every value — until it has read EXPECTED
// messages. Prints {"messages": N}.
// node bench/raw-consumer.mjs BROKERS GROUP EXPECTED TOPIC...
import { Kafka, logLevel } from 'kafkajs';

const [brokers, group, expectedArg, ...topics] = process.argv.slice(2);
const expected = Number(expectedArg);
const kafka = new Kafka({ clientId: 'bench-raw', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId: group });
await consumer.connect();
await consumer.subscribe({ topics, fromBeginning: true });
let messages = 0;
let parsed = 0;
const done = new Promise((resolve) => {
  void consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) if (JSON.parse(m.value.toString('utf8')) !== null) parsed++;
      messages += batch.messages.length;
      if (messages >= expected) resolve();
    },
  });
});
await done;
await consumer.disconnect();
console.log(JSON.stringify({ messages, parsed }));
