/** Severity of a log line, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel | undefined;
  /** Where lines go. Default `process.stderr` (stdout is for results and batch ids). */
  stream?: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined;
  /** JSON lines, or readable text. Default: JSON unless the stream is a TTY. */
  json?: boolean | undefined;
}

/**
 * A small structured logger: JSON lines for machines, one readable line per event on a terminal.
 * Field values go through JSON.stringify, so a {@link Secret} prints as `[redacted]`.
 */
export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const json = options.json ?? !stream.isTTY;
  const threshold = ORDER[options.level ?? 'info'];

  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    if (ORDER[level] < threshold) return;
    const all = fields ? { ...base, ...fields } : base;
    if (json) {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...all })}\n`);
      return;
    }
    const extra = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    stream.write(
      `${level === 'info' ? '' : `${level.toUpperCase()} `}${message}${extra ? `  ${extra}` : ''}\n`,
    );
  };

  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that writes nothing, for library callers that bring none. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
