// One error type for all of netrr, with stable codes (modelled on undici's
// lib/core/errors.js). Codes never change meaning once released; the CLI maps
// each code's category to an exit status and prints one line for it.

/** What kind of failure a code is; decides the CLI exit status. */
export type ErrorCategory =
  | 'usage' // the user asked for something malformed (bad spec, bad option)
  | 'data' // input bytes are not what they claim to be
  | 'no-input' // a file or peer named by the user does not exist
  | 'io' // the OS refused an operation
  | 'protocol' // a peer broke a protocol rule
  | 'limit' // a configured bound was hit
  | 'internal';

const CODES = {
  ERR_USAGE: 'usage',
  ERR_BAD_ENDPOINT_SPEC: 'usage',
  ERR_BAD_OPTION: 'usage',
  /** netrr run: the configuration file is not valid (every problem listed, with its place in the file). */
  ERR_CONFIG: 'usage',

  ERR_FRAME_TOO_LONG: 'protocol',
  ERR_VNET_HDR_TOO_LONG: 'protocol',
  ERR_NOTIFY_UNKNOWN: 'protocol',
  ERR_CONTROL_BAD_REQUEST: 'protocol',

  ERR_PCAP_BAD_MAGIC: 'data',
  ERR_PCAP_TRUNCATED: 'data',
  ERR_PCAP_BAD_RECORD: 'data',
  ERR_PCAPNG_BAD_BLOCK: 'data',
  ERR_PCAPNG_NO_SECTION: 'data',
  ERR_PCAPNG_BAD_INTERFACE: 'data',
  ERR_PACKET_TRUNCATED: 'data',
  ERR_LOG_BAD_MAGIC: 'data',
  ERR_LOG_BAD_VERSION: 'data',
  ERR_LOG_BAD_HEADER: 'data',
  ERR_LOG_BAD_RECORD: 'data',
  ERR_LOG_TRUNCATED: 'data',
  ERR_QEMU_LOG_NO_HEADER: 'data',
  ERR_QEMU_LOG_VERSION: 'data',
  ERR_QEMU_LOG_BAD_EVENT: 'data',
  ERR_QEMU_LOG_TRUNCATED: 'data',
  ERR_PACKET_MALFORMED: 'data',
  ERR_TRUNCATED: 'data',
  ERR_VALUE_RANGE: 'data',
  ERR_KRR_LOG_LAYOUT: 'data',
  ERR_KRR_LOG_BAD_ENTRY: 'data',
  ERR_KRR_LOG_TRUNCATED: 'data',

  ERR_FILE_NOT_FOUND: 'no-input',
  ERR_CONNECT: 'no-input',

  ERR_IO: 'io',
  ERR_ENDPOINT_CLOSED: 'io',
  ERR_TAP_HELPER: 'io',
  ERR_TAP_OPEN: 'io',
  ERR_LOG_WRITE: 'io',

  ERR_QUEUE_FULL: 'limit',
  ERR_LINE_TOO_LONG: 'limit',

  ERR_INTERNAL: 'internal',
  /** netrr demo's own check failed: the world did not get every primary frame once. */
  ERR_DEMO_INCOMPLETE: 'internal',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof CODES;

export class NetrrError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  /** Byte offset in the input where the problem was seen, when it applies. */
  readonly offset: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; offset?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NetrrError';
    this.code = code;
    this.category = CODES[code];
    this.offset = options?.offset;
  }
}

export function isNetrrError(e: unknown): e is NetrrError {
  return e instanceof NetrrError;
}

/** sysexits.h values, so scripts can tell a bad file from a bad command line. */
const EXIT_BY_CATEGORY: Record<ErrorCategory, number> = {
  usage: 64, // EX_USAGE
  data: 65, // EX_DATAERR
  'no-input': 66, // EX_NOINPUT
  protocol: 76, // EX_PROTOCOL
  io: 74, // EX_IOERR
  limit: 75, // EX_TEMPFAIL
  internal: 70, // EX_SOFTWARE
};

export function exitCodeFor(e: NetrrError): number {
  return EXIT_BY_CATEGORY[e.category];
}

/** Wraps a Node system error (ENOENT, ECONNREFUSED …) into a coded error. */
export function fromSystemError(e: unknown, what: string): NetrrError {
  if (isNetrrError(e)) return e;
  const errno = (e as { code?: unknown } | null)?.code;
  const detail = e instanceof Error ? e.message : String(e);
  if (errno === 'ENOENT') return new NetrrError('ERR_FILE_NOT_FOUND', `${what}: no such file`, { cause: e });
  if (errno === 'ECONNREFUSED') return new NetrrError('ERR_CONNECT', `${what}: connection refused`, { cause: e });
  return new NetrrError('ERR_IO', `${what}: ${detail}`, { cause: e });
}
