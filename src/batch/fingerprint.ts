import { createHash, type Hash } from 'node:crypto';

/**
 * Bumped whenever what is hashed changes (canonical form, normalisation), so a fingerprint from an
 * older version never matches by accident.
 */
const FINGERPRINT_VERSION = 'claude-batch/input/v1';

/**
 * sha256 over the normalised requests in input order: the version line, then each request's
 * canonical JSON (see `canonicalJson`) followed by `\n`. Blank lines, line endings, a BOM, key order
 * and whether a request was written in shorthand do not change it; any difference in what would be
 * sent does, and so does the order of the requests.
 */
export class InputFingerprint {
  private readonly hash: Hash = createHash('sha256').update(`${FINGERPRINT_VERSION}\n`);

  /** Adds one request, as `validateLine` returned it in `canonical`. */
  add(canonicalRequest: string): void {
    this.hash.update(canonicalRequest);
    this.hash.update('\n');
  }

  /** Lowercase hex. Call once. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
