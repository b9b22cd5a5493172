/** No batch with this id under the runtime's prefix (never submitted, deleted, or another prefix). */
export class BatchNotFoundError extends Error {
  override name = 'BatchNotFoundError';
  constructor(
    readonly batchId: string,
    prefix: string,
  ) {
    super(`no batch ${batchId} under prefix ${prefix}`);
  }
}
