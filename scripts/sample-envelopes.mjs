// Writes N sample customer envelopes as NDJSON to stdout (demo and benchmark input).
import { makeEnvelope } from '../dist/src/records/envelope.js';

const count = Number(process.argv[2] ?? 1000);
const keys = Number(process.argv[3] ?? Math.max(1, Math.floor(count / 2)));
const lines = [];
for (let i = 0; i < count; i++) {
  const envelope = makeEnvelope({
    source: 'crm',
    id: `C${String(i % keys).padStart(7, '0')}`,
    op: 'upsert',
    data: {
      name: `Customer ${i} — Zoë 山田`,
      seq: i,
      productIds: [`P${String((i % 200) + 1).padStart(6, '0')}`],
    },
    sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
  });
  lines.push(JSON.stringify(envelope));
  if (lines.length === 5000) {
    if (!process.stdout.write(lines.join('\n') + '\n'))
      await new Promise((r) => process.stdout.once('drain', r));
    lines.length = 0;
  }
}
if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
