/**
 * The Messages create parameters of one request, as the Message Batches request format carries them.
 * Only the fields the runner reads are typed; everything else passes through to the API unchanged.
 */
export interface MessageParams {
  model: string;
  max_tokens: number;
  messages: unknown[];
  system?: unknown;
  [param: string]: unknown;
}

/** One line of the input, normalised to the Message Batches request format. */
export interface BatchRequest {
  custom_id: string;
  params: MessageParams;
}

/** The API's rule for custom ids (and ours for batch ids). */
export const CUSTOM_ID_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** The API's request body limit; a larger request would be answered 413 by the edge. */
export const MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024;
