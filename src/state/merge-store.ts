import { DEFAULT_PRODUCT_REF_PATH } from '../merge/product-refs.js';
import type { UnifiedDelivery } from '../merge/unified.js';
import type { Db } from './db.js';
import { EntityStore, type MergeBatchResult, type MergeItem } from './entity-store.js';
import { migrateMergeSchema } from './merge-schema.js';
import { Outbox, type Claim, type Completion, type LedgerEntry } from './outbox.js';
import { ReadModel, type BuiltCustomer } from './read-model.js';

/**
 * The consume stage's state, one object over its parts: the merge tables (entity-store.ts), the
 * outbox and delivery ledger (outbox.ts), the unified read (read-model.ts), and their tables
 * (merge-schema.ts). Callers use this facade; the parts are exposed for tools that need one of them.
 */

export type { MergeBatchResult, MergeItem, MergeOutcome, SourcePosition } from './entity-store.js';
export type { Claim, Completion, LedgerEntry } from './outbox.js';
export type { BuiltCustomer } from './read-model.js';
export { newOwnerId } from './outbox.js';

export interface MergeStoreOptions {
  /** Where customer records list product ids (see src/merge/product-refs.ts). */
  productRefPath?: string;
}

export class MergeStore {
  private constructor(
    readonly db: Db,
    readonly entities: EntityStore,
    readonly outbox: Outbox,
    readonly readModel: ReadModel,
  ) {}

  /** Creates or upgrades the consume tables (see merge-schema.ts) and opens the store. */
  static async open(db: Db, options: MergeStoreOptions = {}): Promise<MergeStore> {
    const outbox = new Outbox(db);
    const entities = new EntityStore(db, outbox, options.productRefPath ?? DEFAULT_PRODUCT_REF_PATH);
    await migrateMergeSchema(db, (data) => entities.productIdsOf(data));
    return new MergeStore(db, entities, outbox, new ReadModel(db));
  }

  productIdsOf(data: Record<string, unknown> | null): string[] {
    return this.entities.productIdsOf(data);
  }

  mergeBatch(items: MergeItem[]): Promise<MergeBatchResult> {
    return this.entities.mergeBatch(items);
  }

  claim(owner: string, limit: number, leaseMs: number): Promise<Claim[]> {
    return this.outbox.claim(owner, limit, leaseMs);
  }

  renew(owner: string, leaseMs: number): Promise<void> {
    return this.outbox.renew(owner, leaseMs);
  }

  release(owner: string): Promise<void> {
    return this.outbox.release(owner);
  }

  releaseDeadOwners(owner: string): Promise<number> {
    return this.outbox.releaseDeadOwners(owner);
  }

  complete(owner: string, completions: Completion[]): Promise<void> {
    return this.outbox.complete(owner, completions);
  }

  /** Marks customers to deliver again and clears their dead-letter mark, in one transaction. */
  remarkForDelivery(customerIds: string[]): Promise<{ gen: number; dirtied: number }> {
    return this.outbox.remarkForDelivery(customerIds);
  }

  pendingUpTo(gen: number): Promise<number> {
    return this.outbox.pendingUpTo(gen);
  }

  maxGen(): Promise<number> {
    return this.outbox.maxGen();
  }

  pendingTotal(): Promise<number> {
    return this.outbox.pendingTotal();
  }

  ledger(customerIds: string[]): Promise<Map<string, LedgerEntry>> {
    return this.outbox.ledger(customerIds);
  }

  buildUnified(customerIds: string[]): Promise<Map<string, BuiltCustomer>> {
    return this.readModel.buildUnified(customerIds);
  }

  unifiedView(pageSize?: number): AsyncGenerator<UnifiedDelivery> {
    return this.readModel.unifiedView(pageSize);
  }

  async counts(): Promise<{ customers: number; products: number; dirty: number; delivered: number }> {
    return { ...(await this.entities.counts()), ...(await this.outbox.counts()) };
  }
}
