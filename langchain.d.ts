// Types of require('vecvault/langchain'). Needs the optional peer dependency @langchain/core.
import type { MaxMarginalRelevanceSearchOptions, VectorStore } from '@langchain/core/vectorstores';
import type { Callbacks } from '@langchain/core/callbacks/manager';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import type { DocumentInterface } from '@langchain/core/documents';
import type { Filter, LoadOptions, SaveOptions, SaveStats, SessionTarget, VectorDB, VectorDBOptions } from './index';

/**
 * Options of {@link VecvaultStore}: the options of `new VectorDB()`, with
 * `dimension` optional (the first vectors added fix it), or `db`, an open
 * VectorDB to use, alone.
 */
export type VecvaultStoreConfig =
  | (Omit<VectorDBOptions, 'dimension'> & { dimension?: number; db?: undefined })
  | { db: VectorDB };

/** The metadata key under which a document's text is stored; a document's own metadata may not use it. */
export declare const PAGE_CONTENT: '__pageContent';

/**
 * A LangChain.js VectorStore on a vecvault VectorDB (docs/LANGCHAIN.md).
 * Scores are vecvault's `score`: larger is more similar.
 */
export declare class VecvaultStore extends VectorStore {
  FilterType: Filter;
  constructor(embeddings: EmbeddingsInterface, config?: VecvaultStoreConfig);
  /** The VectorDB underneath; null until the first vectors fix the dimension. */
  readonly db: VectorDB | null;
  _vectorstoreType(): string;
  /** Ids from `options.ids`, else each document's `id`, else random UUIDs. An existing id is replaced. */
  addVectors(vectors: number[][], documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]>;
  addDocuments(documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]>;
  similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[DocumentInterface, number][]>;
  /** The `fetchK` nearest (default 20), then `k` of them by LangChain's maximal marginal relevance (`lambda` default 0.5). */
  maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Filter>, callbacks?: Callbacks): Promise<DocumentInterface[]>;
  /** Deletes by ids (unknown ids are skipped) or by a filter. */
  delete(params: { ids: string[] } | { filter: Filter }): Promise<void>;
  /** Saves the store as a vecvault session (needs `key` or `passphrase` in the config unless `encryptAtRest: false`). */
  save(target: SessionTarget, options?: SaveOptions): Promise<SaveStats>;
  /** Closes the VectorDB underneath. */
  close(): void;
  static load(source: SessionTarget, embeddings: EmbeddingsInterface, options?: LoadOptions): Promise<VecvaultStore>;
  static fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, config?: VecvaultStoreConfig): Promise<VecvaultStore>;
  static fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, config?: VecvaultStoreConfig): Promise<VecvaultStore>;
}
