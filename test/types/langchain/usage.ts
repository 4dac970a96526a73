// Compile-only use of require('vecvault/langchain') as a TypeScript user writes it.
import { VecvaultStore, PAGE_CONTENT } from 'vecvault/langchain';
import { MemoryStorage } from 'vecvault';
import { SyntheticEmbeddings } from '@langchain/core/utils/testing';
import { Document } from '@langchain/core/documents';
import type { VectorStoreInterface } from '@langchain/core/vectorstores';

export async function usage(): Promise<number> {
  const embeddings = new SyntheticEmbeddings({ vectorSize: 8 });
  const key = new Uint8Array(32);
  const store = await VecvaultStore.fromTexts(['a'], [{ lang: 'en' }], embeddings, { filterable: ['lang'], key, metric: 'l2' });
  const ids: string[] = await store.addDocuments([new Document({ pageContent: 'b' })], { ids: ['b'] });
  const hits = await store.similaritySearchWithScore('a', 2, { lang: { $in: ['en'] } });
  const score: number = hits[0][1];
  await store.delete({ ids });
  await store.delete({ filter: { lang: 'en' } });
  const mem = new MemoryStorage();
  const stats = await store.save(mem);
  const loaded = await VecvaultStore.load(mem, embeddings, { key, lazy: false });
  const generic: VectorStoreInterface = loaded;
  const docs = await loaded.asRetriever({ k: 3, filter: { lang: 'en' } }).invoke('a');
  const diverse = await loaded.maxMarginalRelevanceSearch('a', { k: 2, fetchK: 10, lambda: 0.3, filter: { lang: 'en' } });
  const db = loaded.db;
  if (db !== null) {
    const again = new VecvaultStore(embeddings, { db });
    // @ts-expect-error a db comes alone, without other options
    new VecvaultStore(embeddings, { db, metric: 'l2' });
    again.close();
  }
  // @ts-expect-error a filter is a vecvault filter object, not a function
  await store.similaritySearch('a', 1, (d: Document) => d.metadata.lang === 'en');
  const empty = await VecvaultStore.fromDocuments([], embeddings);
  empty.close();
  return score + stats.generation + docs.length + diverse.length + PAGE_CONTENT.length + (generic ? 1 : 0);
}
