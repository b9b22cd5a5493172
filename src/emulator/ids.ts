/**
 * Ids shaped like the API's (`req_...`, `msg_...`, `msgbatch_...`): a random per-process stem plus a counter, which is
 * unique and costs nothing per request, unlike drawing random bytes each time.
 */
import { randomBytes } from 'node:crypto';

export class IdSource {
  readonly #stem = randomBytes(6).toString('hex');
  #next = 0;

  next(prefix: 'req' | 'msg' | 'msgbatch'): string {
    return `${prefix}_emu${this.#stem}${(this.#next++).toString(36).padStart(8, '0')}`;
  }
}
