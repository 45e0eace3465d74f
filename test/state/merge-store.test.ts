import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope } from '../../src/records/envelope.js';
import { openDb, type Db } from '../../src/state/db.js';
import { MergeStore, newOwnerId, type MergeItem } from '../../src/state/merge-store.js';
import { createPgSchema } from '../helpers/postgres.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Kind = 'sqlite' | 'postgres';

async function openStore(
  kind: Kind,
  productRefPath?: string,
): Promise<{ db: Db; store: MergeStore; url: string }> {
  let url: string;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'syncctl-merge-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    url = join(dir, 'state.db');
  } else {
    const schema = await createPgSchema('merge_store');
    cleanups.push(schema.drop);
    url = schema.url;
  }
  const db = await openDb(url);
  cleanups.push(() => db.close());
  const store = await MergeStore.open(db, productRefPath ? { productRefPath } : {});
  return { db, store, url };
}

let offset = 0;
function customer(
  id: string,
  version: number,
  productIds: string[],
  extra: Record<string, unknown> = {},
): MergeItem {
  return item(
    makeEnvelope({
      source: 'crm',
      id,
      op: 'upsert',
      data: { id, name: `Name ${id} v${version}`, productIds, ...extra },
      sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString(),
      sourceVersion: version,
    }),
  );
}
function product(id: string, version: number, extra: Record<string, unknown> = {}): MergeItem {
  return item(
    makeEnvelope({
      source: 'inventory',
      id,
      op: 'upsert',
      data: { id, name: `Product ${id} v${version}`, price: version * 10, discontinued: false, ...extra },
      sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString(),
      sourceVersion: version,
    }),
  );
}
function item(envelope: Envelope): MergeItem {
  return {
    entity: envelope.entity,
    id: envelope.id,
    envelope,
    position: { topic: envelope.entity === 'customer' ? 'c' : 'p', partition: 0, offset: String(offset++) },
  };
}
function tombstone(entity: 'customer' | 'product', id: string): MergeItem {
  return { entity, id, envelope: null, position: { topic: 'c', partition: 0, offset: String(offset++) } };
}

async function dirtyIds(db: Db): Promise<string[]> {
  const rows = await db.query<{ customer_id: string }>(
    'SELECT customer_id FROM consume_dirty ORDER BY customer_id',
  );
  return rows.map((r) => r.customer_id);
}

async function clearDirty(db: Db): Promise<void> {
  await db.run('DELETE FROM consume_dirty');
}

describe.each<Kind>(['sqlite', 'postgres'])('MergeStore on %s', (kind) => {
  it('keeps the newest version: newer replaces, older is stale, the same version is unchanged', async () => {
    const { store } = await openStore(kind);
    const r1 = await store.mergeBatch([
      customer('C1', 2, ['P1']),
      customer('C1', 1, ['P9']),
      customer('C1', 2, ['P1']),
    ]);
    expect(r1.outcomes).toEqual(['applied', 'stale', 'unchanged']);
    const r2 = await store.mergeBatch([customer('C1', 3, ['P2'])]);
    expect(r2.outcomes).toEqual(['applied']);
    const built = await store.buildUnified(['C1']);
    const record = built.get('C1')?.delivery.sink.record as {
      customer: { name: string };
      unresolvedProductIds: string[];
    };
    expect(record.customer.name).toBe('Name C1 v3');
    expect(record.unresolvedProductIds).toEqual(['P2']);
  });

  it('orders by sourceUpdatedAt when there is no sourceVersion', async () => {
    const { store } = await openStore(kind);
    const at = (minute: number, name: string) =>
      item(
        makeEnvelope({
          source: 'crm',
          id: 'C1',
          op: 'upsert',
          data: { name },
          sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
        }),
      );
    const r = await store.mergeBatch([at(5, 'five'), at(3, 'three'), at(7, 'seven'), at(7, 'seven')]);
    expect(r.outcomes).toEqual(['applied', 'stale', 'applied', 'unchanged']);
  });

  it('applies unversioned records in Kafka order unless identical', async () => {
    const { store } = await openStore(kind);
    const plain = (name: string) =>
      item(makeEnvelope({ source: 'crm', id: 'C1', op: 'upsert', data: { name }, sourceUpdatedAt: null }));
    const r = await store.mergeBatch([plain('a'), plain('b'), plain('b'), plain('a')]);
    expect(r.outcomes).toEqual(['applied', 'applied', 'unchanged', 'applied']);
  });

  it('tombstones delete; replayed older upserts stay stale; a newer version re-creates', async () => {
    const { store, db } = await openStore(kind);
    await store.mergeBatch([customer('C1', 2, [])]);
    const del = await store.mergeBatch([tombstone('customer', 'C1')]);
    expect(del.outcomes).toEqual(['applied']);
    expect((await store.buildUnified(['C1'])).get('C1')?.delivery.sink.op).toBe('delete');
    // Replay of the partition after a crash: the same upsert, then the same tombstone.
    const replay = await store.mergeBatch([customer('C1', 2, []), tombstone('customer', 'C1')]);
    expect(replay.outcomes).toEqual(['stale', 'unchanged']);
    expect((await store.buildUnified(['C1'])).get('C1')?.delivery.sink.op).toBe('delete');
    const again = await store.mergeBatch([customer('C1', 3, [])]);
    expect(again.outcomes).toEqual(['applied']);
    expect((await store.buildUnified(['C1'])).get('C1')?.delivery.sink.op).toBe('upsert');
    expect(await store.counts()).toMatchObject({ customers: 1 });
    expect(await dirtyIds(db)).toEqual(['C1']);
  });

  it('delete envelopes outrank the upsert of the same version', async () => {
    const { store } = await openStore(kind);
    const base = customer('C1', 4, []);
    const del = item(
      makeEnvelope({
        source: 'crm',
        id: 'C1',
        op: 'delete',
        data: null,
        sourceUpdatedAt: base.envelope?.sourceUpdatedAt ?? null,
        sourceVersion: 4,
      }),
    );
    expect((await store.mergeBatch([base, del, base])).outcomes).toEqual(['applied', 'applied', 'stale']);
  });

  it('marks dirty: the customer itself, every customer of a changed product, and customers a new product resolves', async () => {
    const { store, db } = await openStore(kind);
    await store.mergeBatch([
      customer('C1', 1, ['P1', 'P2']),
      customer('C2', 1, ['P2']),
      customer('C3', 1, ['P3']),
    ]);
    expect(await dirtyIds(db)).toEqual(['C1', 'C2', 'C3']);
    await clearDirty(db);

    // P2 is new: it resolves C1's and C2's unresolved reference.
    const r = await store.mergeBatch([product('P2', 1)]);
    expect(r.dirtied).toBe(2);
    expect(await dirtyIds(db)).toEqual(['C1', 'C2']);
    await clearDirty(db);

    // An unchanged product marks nobody; a changed one marks its customers again.
    expect((await store.mergeBatch([product('P2', 1)])).gen).toBeNull();
    expect(await dirtyIds(db)).toEqual([]);
    await store.mergeBatch([product('P2', 2)]);
    expect(await dirtyIds(db)).toEqual(['C1', 'C2']);
    await clearDirty(db);

    // C1 drops P2: a later P2 change no longer concerns it.
    await store.mergeBatch([customer('C1', 2, ['P1'])]);
    await clearDirty(db);
    await store.mergeBatch([product('P2', 3)]);
    expect(await dirtyIds(db)).toEqual(['C2']);
  });

  it('follows a configured product reference path into nested orders', async () => {
    const { store } = await openStore(kind, 'orders[].items[].productId');
    await store.mergeBatch([
      customer('C1', 1, [], {
        orders: [{ items: [{ productId: 'P1' }, { productId: 'P2' }] }, { items: [{ productId: 'P1' }] }],
      }),
      product('P1', 1),
    ]);
    const record = (await store.buildUnified(['C1'])).get('C1')?.delivery.sink.record as {
      products: { productId: string }[];
      unresolvedProductIds: string[];
    };
    expect(record.products.map((p) => p.productId)).toEqual(['P1']);
    expect(record.unresolvedProductIds).toEqual(['P2']);
  });

  it('builds unified records with resolved, unresolved and discontinued products', async () => {
    const { store } = await openStore(kind);
    await store.mergeBatch([
      customer('C1', 1, ['P1', 'P2', 'P3', 'P4']),
      product('P1', 1),
      product('P2', 1, { discontinued: true }),
      product('P3', 1),
      tombstone('product', 'P3'),
    ]);
    const entry = (await store.buildUnified(['C1'])).get('C1');
    const record = entry?.delivery.sink.record as {
      products: { productId: string; discontinued: boolean; product: { name: string } | null }[];
      unresolvedProductIds: string[];
      contentHash: string;
    };
    expect(record.products.map((p) => [p.productId, p.discontinued, p.product?.name])).toEqual([
      ['P1', false, 'Product P1 v1'],
      ['P2', true, 'Product P2 v1'],
      ['P3', true, 'Product P3 v1'],
    ]);
    expect(record.unresolvedProductIds).toEqual(['P4']);
    expect(record.contentHash).toBe(entry?.delivery.hash);
    // Same state, same hash and key: a rebuild after a crash resends the identical record.
    const again = (await store.buildUnified(['C1'])).get('C1');
    expect(again?.delivery.sink.key).toBe(entry?.delivery.sink.key);
    expect(entry?.source).toMatchObject({ topic: 'c', partition: 0 });
  });

  it('claims exclusively, clears on completion, and keeps a customer dirty when re-marked mid-delivery', async () => {
    const { store, db } = await openStore(kind);
    await store.mergeBatch([customer('C1', 1, []), customer('C2', 1, []), customer('C3', 1, [])]);
    const a = newOwnerId();
    const b = newOwnerId();
    const claimedA = await store.claim(a, 2, 60_000);
    expect(claimedA.map((c) => c.customerId)).toEqual(['C1', 'C2']);
    const claimedB = await store.claim(b, 10, 60_000);
    expect(claimedB.map((c) => c.customerId)).toEqual(['C3']);
    expect(await store.claim(b, 10, 60_000)).toEqual(claimedB);

    // C2 changes while A delivers it: A's completion must not clear the newer mark.
    await store.mergeBatch([customer('C2', 2, [])]);
    await store.complete(a, [
      { customerId: 'C1', gen: claimedA[0]!.gen, outcome: 'delivered', hash: 'h1', key: 'k1', op: 'upsert' },
      { customerId: 'C2', gen: claimedA[1]!.gen, outcome: 'delivered', hash: 'h2', key: 'k2', op: 'upsert' },
    ]);
    expect(await dirtyIds(db)).toEqual(['C2', 'C3']);
    const reclaimed = await store.claim(a, 10, 60_000);
    expect(reclaimed.map((c) => c.customerId)).toEqual(['C2']);
    const ledger = await store.ledger(['C1', 'C2', 'C9']);
    expect(ledger.get('C1')).toEqual({ deliveredHash: 'h1', deliveredOp: 'upsert', deadHash: null });
    expect(ledger.has('C9')).toBe(false);

    // A lease that ran out can be taken over.
    await store.release(b);
    const c = newOwnerId();
    await store.claim(b, 10, -1);
    expect((await store.claim(c, 10, 60_000)).map((x) => x.customerId)).toEqual(['C3']);
  });

  it('counts pending marks up to a generation', async () => {
    const { store } = await openStore(kind);
    const first = await store.mergeBatch([customer('C1', 1, [])]);
    const second = await store.mergeBatch([customer('C2', 1, [])]);
    expect(second.gen).toBeGreaterThan(first.gen ?? Infinity);
    expect(await store.pendingUpTo(first.gen!)).toBe(1);
    expect(await store.pendingUpTo(second.gen!)).toBe(2);
    expect(await store.maxGen()).toBe(second.gen);
  });

  it('releases claims of a process on this host that no longer exists', async () => {
    const { store, db } = await openStore(kind);
    await store.mergeBatch([customer('C1', 1, [])]);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadOwner = `${hostname()}/${child.stdout.toString()}/deadbeef`;
    expect(await store.claim(deadOwner, 10, 600_000)).toHaveLength(1);
    const me = newOwnerId();
    expect(await store.claim(me, 10, 60_000)).toHaveLength(0);
    expect(await store.releaseDeadOwners(me)).toBe(1);
    expect(await store.claim(me, 10, 60_000)).toHaveLength(1);
    expect(await dirtyIds(db)).toEqual(['C1']);
  });

  it('lists the current unified view without deleted customers', async () => {
    const { store } = await openStore(kind);
    await store.mergeBatch([
      customer('C1', 1, []),
      customer('C2', 1, []),
      customer('C3', 1, []),
      tombstone('customer', 'C2'),
    ]);
    const ids: string[] = [];
    for await (const d of store.unifiedView(2)) ids.push(d.sink.customerId);
    expect(ids).toEqual(['C1', 'C3']);
  });
});

describe('MergeStore on shared PostgreSQL', () => {
  it('two instances claiming at once never get the same customer', async () => {
    const { url } = await openStore('postgres');
    const dbA = await openDb(url);
    const dbB = await openDb(url);
    cleanups.push(
      () => dbA.close(),
      () => dbB.close(),
    );
    const a = await MergeStore.open(dbA);
    const b = await MergeStore.open(dbB);
    const ids = Array.from({ length: 200 }, (_, i) => `C${String(i).padStart(4, '0')}`);
    await a.mergeBatch(ids.map((id) => customer(id, 1, [])));
    const ownerA = newOwnerId();
    const ownerB = newOwnerId();
    const seen: string[] = [];
    const worker = async (store: MergeStore, owner: string) => {
      for (;;) {
        const claims = await store.claim(owner, 7, 60_000);
        if (claims.length === 0) return;
        seen.push(...claims.map((c) => c.customerId));
        await store.complete(
          owner,
          claims.map((c) => ({ customerId: c.customerId, gen: c.gen, outcome: 'skipped' as const })),
        );
      }
    };
    await Promise.all([
      worker(a, ownerA),
      worker(b, ownerB),
      worker(a, `${ownerA}x`),
      worker(b, `${ownerB}x`),
    ]);
    expect(seen.sort()).toEqual(ids);
    expect(await a.pendingTotal()).toBe(0);
  });

  it('concurrent merges of the same entities from two instances keep the newest version', async () => {
    const { url } = await openStore('postgres');
    const dbA = await openDb(url);
    const dbB = await openDb(url);
    cleanups.push(
      () => dbA.close(),
      () => dbB.close(),
    );
    const a = await MergeStore.open(dbA);
    const b = await MergeStore.open(dbB);
    const ids = Array.from({ length: 40 }, (_, i) => `C${i}`);
    const versions = (v: number) => ids.map((id) => customer(id, v, ['P1']));
    // Overlapping batches in opposite orders: row locks taken crosswise deadlock, and the
    // store must retry rather than fail.
    const first = await Promise.all([
      a.mergeBatch(versions(1)),
      b.mergeBatch(versions(3).reverse()),
      a.mergeBatch(versions(2)),
      b.mergeBatch([product('P1', 1), ...versions(2)]),
    ]);
    expect(first.flatMap((r) => r.outcomes)).toHaveLength(161);
    // Replays arriving after the newest version are all stale, whichever instance merges them.
    const replays = await Promise.all([a.mergeBatch(versions(1)), b.mergeBatch(versions(2).reverse())]);
    expect(new Set(replays.flatMap((r) => r.outcomes))).toEqual(new Set(['stale']));
    const built = await a.buildUnified(ids);
    for (const id of ids) {
      const record = built.get(id)?.delivery.sink.record as { customer: { name: string } };
      expect(record.customer.name).toBe(`Name ${id} v3`);
    }
  });

  it('a product merged while another instance merges a customer referencing it is never missed', async () => {
    // The race: instance A merges customer C (reference → P, C dirty) and delivers C at once, while
    // instance B merges P. If B's "mark customers referencing P" cannot see A's reference yet and A's
    // delivery cannot see P yet, C would stay delivered with P unresolved and never be marked again.
    const { url } = await openStore('postgres');
    const dbA = await openDb(url);
    const dbB = await openDb(url);
    cleanups.push(
      () => dbA.close(),
      () => dbB.close(),
    );
    const a = await MergeStore.open(dbA);
    const b = await MergeStore.open(dbB);
    const owner = newOwnerId();
    const missed: string[] = [];
    // B's batch marks P's customers first (ids sort first) and commits only after many more
    // products, which widens the window in which the race would strike.
    const filler = (i: number) => Array.from({ length: 150 }, (_, k) => product(`ZP${i}-${k}`, 1));
    for (let i = 0; i < 30; i++) {
      const c = `RC${i}`;
      const p = `RP${i}`;
      let delivered: string[] = [];
      const batchB = [product(p, 1), ...filler(i)];
      await Promise.all([
        (async () => {
          await new Promise((resolve) => setTimeout(resolve, i * 8));
          await a.mergeBatch([customer(c, 1, [p])]);
          const claims = await a.claim(owner, 10, 60_000);
          const built = await a.buildUnified(claims.map((x) => x.customerId));
          const record = built.get(c)?.delivery.sink.record as { unresolvedProductIds: string[] } | undefined;
          delivered = record?.unresolvedProductIds ?? [];
          await a.complete(
            owner,
            claims.map((x) => ({ customerId: x.customerId, gen: x.gen, outcome: 'skipped' as const })),
          );
        })(),
        b.mergeBatch(batchB),
      ]);
      const stillDirty =
        (await dbA.query('SELECT 1 FROM consume_dirty WHERE customer_id = ?', [c])).length > 0;
      if (delivered.includes(p) && !stillDirty) missed.push(c);
      await dbA.run('DELETE FROM consume_dirty');
    }
    expect(missed).toEqual([]);
  });
});
