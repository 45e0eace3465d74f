/**
 * A small source world for consume tests: customers referencing products, with a model of what is
 * current, and the expected unified view computed from that model by a plain join — independent of
 * src/merge, so the comparison can catch the merge being wrong.
 */
import { Partitioners } from 'kafkajs';
import { KafkaPublisher } from '../../src/connectors/kafka-publisher.js';
import { makeEnvelope, type Envelope } from '../../src/records/envelope.js';
import { testBrokers, testKafka } from './kafka.js';

export interface ModelEntity {
  data: Record<string, unknown> | null;
  deleted: boolean;
  version: number;
}

const NAMES = ['Zoë', 'José', 'Søren', '山田 太郎', 'Мария', "O'Brien", 'Nguyễn', 'Chloé 🚀'];
const BASE = Date.UTC(2026, 0, 1);

export function customerId(i: number): string {
  return `C${String(i).padStart(5, '0')}`;
}
export function productId(i: number): string {
  return `P${String(i).padStart(4, '0')}`;
}

/** Mostly short notes, some null, and now and then a pasted e-mail thread of tens of kilobytes. */
function notesFor(i: number, version: number): string | null {
  if (i % 4 === 0) return null;
  if (i % 50 === 1) return `Re: Übergabe — 請求書 ✉️ v${version}\n`.repeat(1_500);
  return `called about renewal — café ${version}`;
}

export class SourceWorld {
  readonly customers = new Map<string, ModelEntity>();
  readonly products = new Map<string, ModelEntity>();

  customerEnvelope(
    id: string,
    version: number,
    fields: { productIds: string[]; name?: string; notes?: string | null },
  ): Envelope {
    const i = Number(id.slice(1));
    const data = {
      id,
      name: fields.name ?? `${NAMES[i % NAMES.length]} ${i}`,
      email: `${id.toLowerCase()}@example.com`,
      tier: ['free', 'pro', 'enterprise'][i % 3],
      notes: fields.notes === undefined ? notesFor(i, version) : fields.notes,
      productIds: fields.productIds,
      version,
    };
    const envelope = makeEnvelope({
      source: 'crm',
      id,
      op: 'upsert',
      data,
      sourceUpdatedAt: new Date(BASE + version * 86_400_000 + i * 1000).toISOString(),
      sourceVersion: version,
    });
    this.apply(this.customers, id, { data, deleted: false, version });
    return envelope;
  }

  productEnvelope(
    id: string,
    version: number,
    fields: { price?: number; discontinued?: boolean } = {},
  ): Envelope {
    const i = Number(id.slice(1));
    const data = {
      id,
      sku: `SKU-${i}`,
      name: `Product ${i} ✓`,
      price: fields.price ?? (i * 3) % 97,
      currency: 'EUR',
      discontinued: fields.discontinued ?? false,
      modifiedAt: new Date(BASE + version * 86_400_000 + i * 1000).toISOString(),
      version,
    };
    const envelope = makeEnvelope({
      source: 'inventory',
      id,
      op: 'upsert',
      data,
      sourceUpdatedAt: data.modifiedAt,
      sourceVersion: version,
    });
    this.apply(this.products, id, { data, deleted: false, version });
    return envelope;
  }

  deleteEnvelope(entity: 'customer' | 'product', id: string, version: number): Envelope {
    const map = entity === 'customer' ? this.customers : this.products;
    const i = Number(id.slice(1));
    const envelope = makeEnvelope({
      source: entity === 'customer' ? 'crm' : 'inventory',
      id,
      op: 'delete',
      data: null,
      sourceUpdatedAt: new Date(BASE + version * 86_400_000 + i * 1000).toISOString(),
      sourceVersion: version,
    });
    const previous = map.get(id);
    this.apply(map, id, { data: previous?.data ?? null, deleted: true, version });
    return envelope;
  }

  /** A Kafka tombstone (null value) deletes the entity whatever its version. */
  tombstone(entity: 'customer' | 'product', id: string): void {
    const map = entity === 'customer' ? this.customers : this.products;
    const previous = map.get(id);
    map.set(id, { data: previous?.data ?? null, deleted: true, version: previous?.version ?? 0 });
  }

  private apply(map: Map<string, ModelEntity>, id: string, next: ModelEntity): void {
    const current = map.get(id);
    if (current && current.version > next.version) return;
    map.set(id, next);
  }

  /** What Analytics must hold: one entry per live customer, a plain join over the model. */
  expectedView(): Map<string, ExpectedRecord> {
    const view = new Map<string, ExpectedRecord>();
    for (const [id, c] of [...this.customers].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (c.deleted || c.data === null) continue;
      const refs = [...new Set(c.data.productIds as string[])];
      view.set(id, {
        customerId: id,
        customer: c.data,
        products: refs
          .filter((p) => this.products.has(p))
          .map((p) => {
            const product = this.products.get(p) as ModelEntity;
            return {
              productId: p,
              discontinued: product.deleted || product.data?.discontinued === true,
              product: product.data,
            };
          }),
        unresolvedProductIds: refs.filter((p) => !this.products.has(p)),
      });
    }
    return view;
  }
}

export interface ExpectedRecord {
  customerId: string;
  customer: Record<string, unknown>;
  products: { productId: string; discontinued: boolean; product: Record<string, unknown> | null }[];
  unresolvedProductIds: string[];
}

/** The first world: `customers` customers over `products` products, some references not known yet. */
export function firstRound(world: SourceWorld, customers: number, products: number) {
  const productEnvelopes: Envelope[] = [];
  for (let i = 1; i <= products; i++) {
    productEnvelopes.push(world.productEnvelope(productId(i), 1, { discontinued: i % 10 === 0 }));
  }
  const customerEnvelopes: Envelope[] = [];
  for (let i = 1; i <= customers; i++) {
    const refs = [productId(1 + ((i * 7) % products)), productId(1 + ((i * 13) % products))];
    if (i % 5 === 0) refs.push(productId(products + 1 + (i % 3))); // not known yet: unresolved
    if (i % 9 === 0) refs.length = 0;
    customerEnvelopes.push(world.customerEnvelope(customerId(i), 1, { productIds: refs }));
  }
  return { customerEnvelopes, productEnvelopes };
}

export interface Published {
  topic: string;
  envelopes?: Envelope[];
  /** Raw messages (tombstones, garbage) published as given. */
  raw?: { key: string | null; value: string | Buffer | null; headers?: Record<string, string> }[];
}

/** Publishes envelopes with the production publisher (acks=all), raw messages with a plain producer. */
export async function publishAll(items: Published[]): Promise<void> {
  const kafka = testKafka();
  for (const item of items) {
    if (item.envelopes && item.envelopes.length > 0) {
      const publisher = new KafkaPublisher(kafka, [testBrokers()], item.topic);
      await publisher.connect();
      try {
        for (let i = 0; i < item.envelopes.length; i += 500)
          await publisher.publish(item.envelopes.slice(i, i + 500));
      } finally {
        await publisher.close();
      }
    }
    if (item.raw && item.raw.length > 0) {
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      try {
        await producer.send({ topic: item.topic, acks: -1, messages: item.raw });
      } finally {
        await producer.disconnect();
      }
    }
  }
}
