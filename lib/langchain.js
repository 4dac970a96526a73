'use strict';
/*
 * lib/langchain.js: VecvaultStore, a LangChain.js VectorStore on a vecvault
 * VectorDB (require('vecvault/langchain'); docs/LANGCHAIN.md).
 *
 * @langchain/core is an optional peer dependency: it is required when this
 * module is, since the class extends its VectorStore, and its absence is an
 * ERR_INVALID_ARGUMENT that says what to install.
 *
 * A document is stored as one vecvault item: its id, its embedding, and as
 * metadata the document's metadata with the text under the reserved key
 * PAGE_CONTENT. Keeping the user's keys at the top level is what lets a
 * LangChain filter be a vecvault filter unchanged, and `filterable` name the
 * user's own fields; a document whose metadata already holds the reserved
 * key is refused rather than silently losing that key.
 */
const { randomUUID } = require('node:crypto');
const { VecvaultError } = require('./errors');
const { VectorDB } = require('./vector-db');

const PAGE_CONTENT = '__pageContent';

function loadCore() {
  try {
    return {
      VectorStore: require('@langchain/core/vectorstores').VectorStore,
      Document: require('@langchain/core/documents').Document,
    };
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('@langchain/core')) {
      throw new VecvaultError('vecvault/langchain needs LangChain.js: npm install @langchain/core', 'ERR_INVALID_ARGUMENT', { cause: err });
    }
    throw err;
  }
}

const { VectorStore, Document } = loadCore();
const { maximalMarginalRelevance } = require('@langchain/core/utils/math');

const invalid = (message) => new VecvaultError(`VecvaultStore: ${message}`, 'ERR_INVALID_ARGUMENT');

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/* The vecvault metadata of one document. */
function toStored(doc, i) {
  if (!isPlainObject(doc) || typeof doc.pageContent !== 'string') {
    throw invalid(`documents[${i}] must be a Document with a string pageContent`);
  }
  const metadata = doc.metadata === undefined || doc.metadata === null ? {} : doc.metadata;
  if (!isPlainObject(metadata)) throw invalid(`documents[${i}].metadata must be an object`);
  if (Object.prototype.hasOwnProperty.call(metadata, PAGE_CONTENT)) {
    throw invalid(`documents[${i}].metadata has the key ${PAGE_CONTENT}, which the store reserves for the text`);
  }
  return { ...metadata, [PAGE_CONTENT]: doc.pageContent };
}

/* A Document from a stored item (a search hit or get()). */
function toDocument(id, stored) {
  const { [PAGE_CONTENT]: pageContent, ...metadata } = isPlainObject(stored) ? stored : {};
  return new Document({ pageContent: typeof pageContent === 'string' ? pageContent : '', metadata, id });
}

function checkIds(ids, n) {
  if (!Array.isArray(ids) || ids.length !== n) throw invalid(`options.ids must be an array of ${n} ids, one per document`);
  return ids;
}

class VecvaultStore extends VectorStore {
  /**
   * @param {object} embeddings a LangChain EmbeddingsInterface
   * @param {object} [config] VectorDB options (dimension optional: taken from
   *   the first vectors added), or `{ db }`, an open VectorDB to use
   */
  constructor(embeddings, config = {}) {
    // The config may hold a key: it is not handed to LangChain's Serializable,
    // which would keep it for toJSON().
    super(embeddings, {});
    if (!isPlainObject(config)) throw invalid('config must be an object');
    const { db, ...options } = config;
    if (db !== undefined) {
      if (!(db instanceof VectorDB)) throw invalid('config.db must be a VectorDB');
      if (Object.keys(options).length > 0) throw invalid('config.db comes with its own options: pass no others');
    }
    this._options = options;
    this._db = db !== undefined ? db : options.dimension !== undefined ? new VectorDB(options) : null;
  }

  _vectorstoreType() {
    return 'vecvault';
  }

  /** The VectorDB underneath, or null until the first vectors fix the dimension. */
  get db() {
    return this._db;
  }

  _dbFor(dimension) {
    if (this._db === null) this._db = new VectorDB({ ...this._options, dimension });
    return this._db;
  }

  async addVectors(vectors, documents, options = {}) {
    if (!Array.isArray(vectors) || !Array.isArray(documents) || vectors.length !== documents.length) {
      throw invalid('addVectors needs as many vectors as documents');
    }
    if (vectors.length === 0) return [];
    const ids = options && options.ids !== undefined
      ? checkIds(options.ids, documents.length)
      : documents.map((d) => (d && typeof d.id === 'string' && d.id !== '' ? d.id : randomUUID()));
    const items = documents.map((doc, i) => ({ id: ids[i], vector: vectors[i], metadata: toStored(doc, i) }));
    const first = vectors[0];
    await this._dbFor(first && typeof first.length === 'number' ? first.length : 0).addBatchAsync(items);
    return ids;
  }

  async addDocuments(documents, options) {
    if (!Array.isArray(documents)) throw invalid('documents must be an array');
    documents.forEach(toStored); // refuse bad documents before paying for embeddings
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent));
    return this.addVectors(vectors, documents, options);
  }

  /** Search options for a LangChain filter: a vecvault filter object, or none. */
  static _searchOptions(filter, extra) {
    if (filter !== undefined && filter !== null && !isPlainObject(filter)) {
      throw new VecvaultError('VecvaultStore: a filter is a vecvault filter object (docs/FILTER.md), not a function', 'ERR_INVALID_FILTER');
    }
    return filter ? { ...extra, filter } : extra;
  }

  /**
   * [Document, score] pairs, most similar first. The score is vecvault's
   * `score`: larger is more similar (cosine similarity, -L2 distance, or dot
   * product, by the metric).
   */
  async similaritySearchVectorWithScore(query, k, filter) {
    const options = VecvaultStore._searchOptions(filter, undefined);
    if (this._db === null) return [];
    const hits = await this._db.searchAsync(query, k, options);
    return hits.map((hit) => [toDocument(hit.id, hit.metadata), hit.score]);
  }

  /**
   * Maximal marginal relevance: the `fetchK` nearest (default 20), then `k`
   * of them chosen by LangChain's MMR on cosine similarity, trading
   * relevance (`lambda` 1) against diversity (`lambda` 0; default 0.5).
   */
  async maxMarginalRelevanceSearch(query, options) {
    if (!isPlainObject(options)) throw invalid('maxMarginalRelevanceSearch takes { k, fetchK?, lambda?, filter? }');
    const { k, fetchK = 20, lambda = 0.5, filter } = options;
    if (!Number.isSafeInteger(k) || k < 1) throw invalid('k must be a positive integer');
    if (!Number.isSafeInteger(fetchK) || fetchK < 1) throw invalid('fetchK must be a positive integer');
    if (typeof lambda !== 'number' || !(lambda >= 0 && lambda <= 1)) throw invalid('lambda must be a number in 0..1');
    const searchOptions = VecvaultStore._searchOptions(filter, { includeVector: true });
    if (this._db === null) return [];
    const q = await this.embeddings.embedQuery(query);
    const hits = await this._db.searchAsync(q, Math.max(fetchK, k), searchOptions);
    const picked = maximalMarginalRelevance(q, hits.map((hit) => Array.from(hit.vector)), lambda, k);
    return picked.map((i) => toDocument(hits[i].id, hits[i].metadata));
  }

  /** Deletes by `{ ids }` or by `{ filter }`. */
  async delete(params) {
    if (!isPlainObject(params) || (params.ids === undefined) === (params.filter === undefined)) {
      throw invalid('delete takes { ids } or { filter }');
    }
    if (params.ids !== undefined && !Array.isArray(params.ids)) throw invalid('delete: ids must be an array of ids');
    if (this._db === null) return;
    this._db.deleteMany(params.ids !== undefined ? params.ids : { filter: params.filter });
  }

  /** Saves the store as a vecvault session (a directory or a Storage). */
  async save(target, options) {
    if (this._db === null) throw invalid('nothing to save: no vectors were added and no dimension was given');
    return this._db.save(target, options);
  }

  /** Closes the VectorDB underneath. */
  close() {
    if (this._db !== null) this._db.close();
  }

  /** A store on a saved session; `options` are VectorDB.load's (key, lazy, ...). */
  static async load(source, embeddings, options) {
    const db = await VectorDB.load(source, options);
    return new this(embeddings, { db });
  }

  static async fromTexts(texts, metadatas, embeddings, config) {
    if (!Array.isArray(texts)) throw invalid('texts must be an array of strings');
    if (Array.isArray(metadatas) && metadatas.length !== texts.length) throw invalid('metadatas must have one entry per text');
    const docs = texts.map((pageContent, i) => new Document({
      pageContent,
      metadata: Array.isArray(metadatas) ? metadatas[i] : metadatas,
    }));
    return this.fromDocuments(docs, embeddings, config);
  }

  static async fromDocuments(docs, embeddings, config) {
    const store = new this(embeddings, config);
    await store.addDocuments(docs);
    return store;
  }
}

module.exports = { VecvaultStore, PAGE_CONTENT };
