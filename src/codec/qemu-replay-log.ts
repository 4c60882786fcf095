// QEMU's record/replay log (reference replay-logs.md §11): a 12-byte header
// (be32 REPLAY_VERSION + 8 zero bytes), then events, all big-endian: one event
// byte and its payload. Event ids shift between versions, so tables are keyed
// on the version and unknown versions are refused. 0xe0200c (QEMU 7.1 → 10.x)
// and 0xe0200d (11.0: only AUDIO_IN's payload differs) are decoded; older
// formats are recognised and named. QEMU writes the version only at a clean
// exit, so a killed recording has a zero header: reported, not misread.

import { NetrrError } from '../errors.ts';
import { ByteReader } from './byte-reader.ts';
import { u32be, u64be } from './bytes.ts';

export const QEMU_LOG_HEADER_BYTES = 12;
export const REPLAY_VERSION_7_1 = 0xe0200c;
export const REPLAY_VERSION_11_0 = 0xe0200d;

/** Versions we recognise but do not decode, and the QEMU era that wrote them. */
export const OLDER_VERSIONS: Record<number, string> = {
  0xe0200b: 'QEMU 7.1 development builds only (checkpoint byte removed, async kinds not yet folded)',
  0xe0200a: 'QEMU ≤ 7.0 (async events carry a checkpoint byte and a kind byte)',
  0xe02009: 'QEMU 6.x',
  0xe02008: 'QEMU 5.x',
  0xe02007: 'QEMU 4.x',
  0xe02006: 'QEMU 3.x or older',
};

export const EV_INSTRUCTION = 0;
export const EV_ASYNC_NET = 9;
export const EV_END = 39;

/** Names for 0xe0200c/0xe0200d, by event id. */
export const EVENT_NAMES: readonly string[] = (() => {
  const n: string[] = ['INSTRUCTION', 'INTERRUPT', 'EXCEPTION', 'ASYNC_BH', 'ASYNC_BH_ONESHOT', 'ASYNC_INPUT', 'ASYNC_INPUT_SYNC', 'ASYNC_CHAR_READ', 'ASYNC_BLOCK', 'ASYNC_NET'];
  const causes = ['NONE', 'HOST_ERROR', 'HOST_QMP_QUIT', 'HOST_QMP_SYSTEM_RESET', 'HOST_SIGNAL', 'HOST_UI', 'GUEST_SHUTDOWN', 'GUEST_RESET', 'GUEST_PANIC', 'SUBSYSTEM_RESET', 'SNAPSHOT_LOAD', 'MAX'];
  for (const c of causes) n.push(`SHUTDOWN_${c}`);
  n.push('CHAR_WRITE', 'CHAR_READ_ALL', 'CHAR_READ_ALL_ERROR', 'AUDIO_OUT', 'AUDIO_IN', 'RANDOM', 'CLOCK_HOST', 'CLOCK_VIRTUAL_RT');
  for (const c of ['CLOCK_WARP_START', 'CLOCK_WARP_ACCOUNT', 'RESET_REQUESTED', 'SUSPEND_REQUESTED', 'CLOCK_VIRTUAL', 'CLOCK_HOST', 'CLOCK_VIRTUAL_RT', 'INIT', 'RESET']) n.push(`CHECKPOINT_${c}`);
  n.push('END');
  return n;
})();

export interface QemuLogHeader {
  readonly version: number;
}

export function parseQemuLogHeader(b: Uint8Array, assumeVersion?: number): QemuLogHeader {
  if (b.length < QEMU_LOG_HEADER_BYTES) throw new NetrrError('ERR_QEMU_LOG_TRUNCATED', `a QEMU replay log starts with ${QEMU_LOG_HEADER_BYTES} header bytes; this file has ${b.length}`, { offset: 0 });
  let version = new ByteReader(b, 0, b.length, 0, 'ERR_QEMU_LOG_TRUNCATED').u32be('replay log version');
  if (version === 0) {
    if (assumeVersion === undefined) {
      throw new NetrrError(
        'ERR_QEMU_LOG_NO_HEADER',
        'the log header was never written: QEMU writes it only when recording ends cleanly, so this recording was killed (QEMU itself will refuse to replay it). Pass --assume-version 0xe0200c to read its events anyway',
        { offset: 0 },
      );
    }
    version = assumeVersion;
  }
  if (version !== REPLAY_VERSION_7_1 && version !== REPLAY_VERSION_11_0) {
    const era = OLDER_VERSIONS[version];
    throw new NetrrError(
      'ERR_QEMU_LOG_VERSION',
      era !== undefined ? `replay log version 0x${version.toString(16)} (${era}) is recognised but not decoded; netrr decodes 0xe0200c and 0xe0200d` : `unknown replay log version 0x${version.toString(16)} (not a QEMU replay log?)`,
      { offset: 0 },
    );
  }
  return { version };
}

/** One decoded event; the parser reuses the object (copy `data` to keep it). */
export class QemuEvent {
  id = 0;
  offset = 0;
  /** INSTRUCTION: count; CLOCK_*: value; ASYNC_BH/BLOCK: id; CHAR_WRITE: result; RANDOM: ret. */
  value = 0;
  /** The exact value of a 64-bit field (CLOCK_HOST is ns since 1970, past 2^53); 0n otherwise. */
  wide = 0n;
  /** ASYNC_NET: filter-replay index; ASYNC_CHAR_READ: chardev index. */
  index = 0;
  /** ASYNC_NET: packet flags. */
  flags = 0;
  /** ASYNC_NET frame, CHAR_READ/READ_ALL/RANDOM bytes. */
  data: Uint8Array = new Uint8Array(0);
  /** Instructions executed before this event (sum of earlier INSTRUCTION counts). */
  icount = 0;
}

/** Incomplete: not enough bytes yet; the caller supplies more and calls again. */
const MORE = -1;

export class QemuLogParser {
  readonly version: number;
  readonly event = new QemuEvent();
  needBytes = 64;
  events = 0;
  icount = 0;
  ended = false;
  #offset: number;

  constructor(version: number, startOffset = QEMU_LOG_HEADER_BYTES) {
    this.version = version;
    this.#offset = startOffset;
  }

  get offset(): number {
    return this.#offset;
  }

  /** Parses whole events from b[start, end); returns the offset of the first unparsed byte. */
  parse(b: Uint8Array, start: number, end: number, onEvent: (e: QemuEvent) => void): number {
    let pos = start;
    while (pos < end && !this.ended) {
      const next = this.#one(b, pos, end);
      if (next === MORE) return pos;
      this.#offset += next - pos;
      pos = next;
      this.events++;
      onEvent(this.event);
      if (this.event.id === EV_INSTRUCTION) this.icount += this.event.value;
      if (this.event.id === EV_END) this.ended = true;
    }
    return pos;
  }

  #need(pos: number, n: number, end: number, from: number): boolean {
    if (end - pos >= n) return true;
    this.needBytes = pos + n - from;
    return false;
  }

  /** Decodes one event at pos; returns the position after it or MORE. */
  #one(b: Uint8Array, from: number, end: number): number {
    const e = this.event;
    const id = b[from]!;
    let p = from + 1;
    e.id = id;
    e.offset = this.#offset;
    e.icount = this.icount;
    e.value = 0;
    e.wide = 0n;
    e.index = 0;
    e.flags = 0;
    if (id === EV_INSTRUCTION) {
      // The common case (millions per log): no closures on this path.
      if (end - p < 4) {
        this.needBytes = 5;
        return MORE;
      }
      e.value = u32be(b, p);
      return p + 4;
    }
    if (e.data.length !== 0) e.data = b.subarray(0, 0);
    const need = (n: number): boolean => this.#need(p, n, end, from);
    const array = (): number => {
      if (!need(4)) return MORE;
      const len = u32be(b, p);
      if (len > 64 * 1024 * 1024) throw new NetrrError('ERR_QEMU_LOG_BAD_EVENT', `event ${EVENT_NAMES[id]} at offset ${e.offset} claims a ${len}-byte array`, { offset: e.offset });
      if (!need(4 + len)) return MORE;
      e.data = b.subarray(p + 4, p + 4 + len);
      return p + 4 + len;
    };
    if (id <= 2) return p; // INTERRUPT, EXCEPTION
    switch (id) {
      case 3: // ASYNC_BH
      case 4: // ASYNC_BH_ONESHOT
      case 8: // ASYNC_BLOCK
      case 28: // CLOCK_HOST
      case 29: // CLOCK_VIRTUAL_RT
        if (!need(8)) return MORE;
        e.wide = u64be(b, p);
        e.value = Number(e.wide);
        return p + 8;
      case 5: {
        // ASYNC_INPUT (replay-input.c): dword kind; key: dword key kind, then qword+byte (number) or dword+byte (qcode);
        // btn: dword+byte; rel/abs: dword+qword.
        if (!need(4)) return MORE;
        const kind = u32be(b, p);
        p += 4;
        if (kind === 0) {
          if (!need(4)) return MORE;
          const kk = u32be(b, p);
          p += 4;
          const n = kk === 0 ? 9 : 5;
          if (!need(n)) return MORE;
          return p + n;
        }
        if (kind === 1) return need(5) ? p + 5 : MORE;
        if (kind === 2 || kind === 3) return need(12) ? p + 12 : MORE;
        throw new NetrrError('ERR_QEMU_LOG_BAD_EVENT', `input event of unknown kind ${kind} at offset ${e.offset}`, { offset: e.offset });
      }
      case 6: // ASYNC_INPUT_SYNC
        return p;
      case 7: // ASYNC_CHAR_READ: byte index + array
        if (!need(1)) return MORE;
        e.index = b[p]!;
        p += 1;
        return array();
      case EV_ASYNC_NET: // byte filter index, dword flags, array (frame)
        if (!need(5)) return MORE;
        e.index = b[p]!;
        e.flags = u32be(b, p + 1);
        p += 5;
        return array();
      case 22: // CHAR_WRITE: dword result, dword offset
        if (!need(8)) return MORE;
        e.value = u32be(b, p);
        return p + 8;
      case 23: // CHAR_READ_ALL: array
        return array();
      case 24: // CHAR_READ_ALL_ERROR: dword
      case 25: // AUDIO_OUT: dword
        if (!need(4)) return MORE;
        e.value = u32be(b, p);
        return p + 4;
      case 26: {
        // AUDIO_IN — 0xe0200c: qword recorded, qword wpos, recorded × 2 qwords; 0xe0200d: qword n, n × 2 qwords.
        const head = this.version === REPLAY_VERSION_7_1 ? 16 : 8;
        if (!need(head)) return MORE;
        const n = Number(u64be(b, p));
        if (n > 16 * 1024 * 1024) throw new NetrrError('ERR_QEMU_LOG_BAD_EVENT', `AUDIO_IN at offset ${e.offset} claims ${n} samples`, { offset: e.offset });
        if (!need(head + n * 16)) return MORE;
        e.value = n;
        return p + head + n * 16;
      }
      case 27: // RANDOM: dword ret + array
        if (!need(4)) return MORE;
        e.value = u32be(b, p);
        p += 4;
        return array();
      default:
        if ((id >= 10 && id <= 21) || (id >= 30 && id <= EV_END)) return p;
        throw new NetrrError('ERR_QEMU_LOG_BAD_EVENT', `unknown event id ${id} at offset ${e.offset} for version 0x${this.version.toString(16)}`, { offset: e.offset });
    }
  }
}
