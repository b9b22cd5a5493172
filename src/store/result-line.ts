/**
 * The results file's lines, in the Message Batches results format. They are built once, when a
 * request ends, and stored as the exact text `results` streams out.
 */
interface ErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id: string | null;
}

type RequestResult =
  | { type: 'succeeded'; message: unknown }
  | { type: 'errored'; error: ErrorBody }
  | { type: 'canceled' }
  | { type: 'expired' };

interface ResultLine {
  custom_id: string;
  result: RequestResult;
}

export function succeededLine(customId: string, messageJson: string): string {
  // The message arrives as the API's JSON; splice it in rather than parse and re-serialise it.
  return `{"custom_id":${JSON.stringify(customId)},"result":{"type":"succeeded","message":${messageJson}}}`;
}

export function erroredLine(
  customId: string,
  type: string,
  message: string,
  requestId: string | null,
): string {
  const line: ResultLine = {
    custom_id: customId,
    result: { type: 'errored', error: { type: 'error', error: { type, message }, request_id: requestId } },
  };
  return JSON.stringify(line);
}

export function canceledLine(customId: string): string {
  return JSON.stringify({ custom_id: customId, result: { type: 'canceled' } } satisfies ResultLine);
}

export function expiredLine(customId: string): string {
  return JSON.stringify({ custom_id: customId, result: { type: 'expired' } } satisfies ResultLine);
}
