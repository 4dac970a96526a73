// Types of require('vecvault/s3'). Needs the optional peer dependency @aws-sdk/client-s3.
import type { Storage } from './index';

/** Options of {@link S3Storage}. */
export interface S3StorageOptions {
  /** The caller's S3Client (region, endpoint, forcePathStyle, credentials): vecvault never reads credentials itself. */
  client: { send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> };
  bucket: string;
  /** Keys go under this prefix: '' or ending in '/'. Default ''. */
  prefix?: string;
  /**
   * Default true: the manifest is replaced with `If-Match` / `If-None-Match: *`
   * (AWS S3 and most compatible stores). false for a store without them: saves
   * then take a lease object first, with a warning (docs/STORAGE.md).
   */
  conditionalWrites?: boolean;
}

/** A session in S3 or any S3-compatible store (MinIO, Ceph RGW, R2). */
export declare class S3Storage {
  constructor(options: S3StorageOptions);
  readonly bucket: string;
  readonly prefix: string;
}
export interface S3Storage extends Storage {}
