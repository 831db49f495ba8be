/**
 * The device-mapper ioctl interface (linux/dm-ioctl.h, version 4), spoken on /dev/mapper/control
 * through the Sys seam: create, load a table, resume/suspend, remove, status and target messages.
 * Every request is one `struct dm_ioctl` (312 bytes) followed by its payload in one buffer; the
 * kernel writes its answer into the same buffer and sets DM_BUFFER_FULL_FLAG when it needs more
 * room, in which case the call is repeated with a larger buffer.
 */
import { EngineError } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_RDWR, type Sys } from "../../core/sys/sys.ts";

/** sizeof(struct dm_ioctl). */
export const DM_IOCTL_SIZE = 312;
const DM_NAME_LEN = 128;
const DM_UUID_LEN = 129;
/** sizeof(struct dm_target_spec). */
export const DM_TARGET_SPEC_SIZE = 40;

/** Command numbers (enum in dm-ioctl.h). */
export const DmCmd = {
  VERSION: 0,
  REMOVE_ALL: 1,
  LIST_DEVICES: 2,
  DEV_CREATE: 3,
  DEV_REMOVE: 4,
  DEV_RENAME: 5,
  DEV_SUSPEND: 6,
  DEV_STATUS: 7,
  DEV_WAIT: 8,
  TABLE_LOAD: 9,
  TABLE_CLEAR: 10,
  TABLE_DEPS: 11,
  TABLE_STATUS: 12,
  LIST_VERSIONS: 13,
  TARGET_MSG: 14,
} as const;

/** Flags in dm_ioctl.flags. */
export const DM_READONLY_FLAG = 1 << 0;
export const DM_SUSPEND_FLAG = 1 << 1;
export const DM_STATUS_TABLE_FLAG = 1 << 4;
export const DM_ACTIVE_PRESENT_FLAG = 1 << 5;
export const DM_BUFFER_FULL_FLAG = 1 << 8;

/** The ioctl request for command `nr`: _IOWR(0xfd, nr, struct dm_ioctl). */
export function dmRequest(nr: number): number {
  return ((3 << 30) | (DM_IOCTL_SIZE << 16) | (0xfd << 8) | nr) >>> 0;
}

/** One line of a device table. */
export interface DmTarget {
  start: bigint;
  /** Length in 512-byte sectors. */
  length: bigint;
  type: string;
  params: string;
}

/** What a request carries. */
export interface DmRequestBody {
  name?: string;
  uuid?: string;
  flags?: number;
  targets?: DmTarget[];
  /** DM_TARGET_MSG: the sector and the message text. */
  message?: { sector: bigint; text: string };
}

/** The decoded header of an answer. */
export interface DmHeader {
  version: [number, number, number];
  dataSize: number;
  dataStart: number;
  targetCount: number;
  openCount: number;
  flags: number;
  eventNr: number;
  /** Kernel dev_t in the "huge" encoding. */
  dev: bigint;
  name: string;
  uuid: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const align8 = (n: number) => (n + 7) & ~7;

function putString(b: Uint8Array, off: number, s: string, max: number, what: string): void {
  const bytes = enc.encode(s);
  if (bytes.length >= max) throw new EngineError("invalid-argument", `device-mapper ${what} ${JSON.stringify(s)} is longer than ${max - 1} bytes`);
  b.set(bytes, off);
}

function getString(b: Uint8Array, off: number, max: number): string {
  const end = b.subarray(off, off + max).indexOf(0);
  return dec.decode(b.subarray(off, end < 0 ? off + max : off + end));
}

/** Encode a request into a buffer of `size` bytes (at least the payload). */
export function encodeDmRequest(body: DmRequestBody, size = 16 * 1024): Uint8Array {
  const payload: Uint8Array[] = [];
  for (const t of body.targets ?? []) {
    const params = enc.encode(t.params);
    const len = align8(DM_TARGET_SPEC_SIZE + params.length + 1);
    const spec = new Uint8Array(len);
    const v = new DataView(spec.buffer);
    v.setBigUint64(0, t.start, true);
    v.setBigUint64(8, t.length, true);
    v.setInt32(16, 0, true);
    v.setUint32(20, len, true); // `next`: offset of the following spec from this one
    putString(spec, 24, t.type, 16, "target type");
    spec.set(params, DM_TARGET_SPEC_SIZE);
    payload.push(spec);
  }
  if (body.message) {
    const text = enc.encode(body.message.text);
    const m = new Uint8Array(align8(8 + text.length + 1));
    new DataView(m.buffer).setBigUint64(0, body.message.sector, true);
    m.set(text, 8);
    payload.push(m);
  }
  const payloadLen = payload.reduce((n, p) => n + p.length, 0);
  const total = Math.max(size, DM_IOCTL_SIZE + payloadLen);
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  v.setUint32(0, 4, true);
  v.setUint32(4, 0, true);
  v.setUint32(8, 0, true);
  v.setUint32(12, total, true); // data_size: the whole buffer
  v.setUint32(16, DM_IOCTL_SIZE, true); // data_start
  v.setUint32(20, body.targets?.length ?? 0, true);
  v.setUint32(28, body.flags ?? 0, true);
  if (body.name) putString(b, 48, body.name, DM_NAME_LEN, "device name");
  if (body.uuid) putString(b, 176, body.uuid, DM_UUID_LEN, "uuid");
  let off = DM_IOCTL_SIZE;
  for (const p of payload) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

/** Decode the header the kernel wrote back. */
export function decodeDmHeader(b: Uint8Array): DmHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    version: [v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true)],
    dataSize: v.getUint32(12, true),
    dataStart: v.getUint32(16, true),
    targetCount: v.getUint32(20, true),
    openCount: v.getInt32(24, true),
    flags: v.getUint32(28, true),
    eventNr: v.getUint32(32, true),
    dev: v.getBigUint64(40, true),
    name: getString(b, 48, DM_NAME_LEN),
    uuid: getString(b, 176, DM_UUID_LEN),
  };
}

/**
 * Decode the target specs after the header. In a request (TABLE_LOAD) each `next` is the offset
 * of the following spec from this one; in the kernel's answers (TABLE_STATUS) it is the offset
 * from the start of the data area.
 */
export function decodeDmTargets(b: Uint8Array, next: "request" | "answer" = "answer"): DmTarget[] {
  const relative = next === "request";
  const h = decodeDmHeader(b);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: DmTarget[] = [];
  let off = h.dataStart;
  for (let i = 0; i < h.targetCount; i++) {
    const step = v.getUint32(off + 20, true);
    out.push({
      start: v.getBigUint64(off, true),
      length: v.getBigUint64(off + 8, true),
      type: getString(b, off + 24, 16),
      params: getString(b, off + DM_TARGET_SPEC_SIZE, Math.max(0, b.length - off - DM_TARGET_SPEC_SIZE)),
    });
    if (step === 0) break;
    off = relative ? off + step : h.dataStart + step;
  }
  return out;
}

/** Decode a DM_TARGET_MSG payload. */
export function decodeDmMessage(b: Uint8Array): { sector: bigint; text: string } {
  const h = decodeDmHeader(b);
  return { sector: new DataView(b.buffer, b.byteOffset).getBigUint64(h.dataStart, true), text: getString(b, h.dataStart + 8, b.length - h.dataStart - 8) };
}

/** Decode DM_LIST_VERSIONS: target names and versions. */
export function decodeDmVersions(b: Uint8Array): Map<string, [number, number, number]> {
  const h = decodeDmHeader(b);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Map<string, [number, number, number]>();
  let off = h.dataStart;
  for (;;) {
    const next = v.getUint32(off, true);
    out.set(getString(b, off + 16, b.length - off - 16), [v.getUint32(off + 4, true), v.getUint32(off + 8, true), v.getUint32(off + 12, true)]);
    if (next === 0) break;
    off += next;
  }
  return out;
}

/** Split the kernel's "huge" dev_t encoding. */
export function decodeHugeDev(dev: bigint): { major: number; minor: number } {
  const d = Number(dev & 0xffffffffn);
  return { major: (d & 0xfff00) >>> 8, minor: (d & 0xff) | ((d >>> 12) & 0xfff00) };
}

/** A handle on /dev/mapper/control. */
export class DeviceMapper {
  private fd: number | undefined;

  constructor(
    private readonly sys: Sys,
    readonly controlPath = "/dev/mapper/control",
  ) {}

  private control(): number {
    this.fd ??= this.sys.openat2(AT_FDCWD, this.controlPath, O_RDWR | O_CLOEXEC, 0, 0);
    return this.fd;
  }

  /** Issue command `cmd`; grows the buffer while the kernel says it is full. Returns the answer buffer. */
  call(cmd: number, body: DmRequestBody): Uint8Array {
    for (let size = 16 * 1024; ; size *= 4) {
      const buf = encodeDmRequest(body, size);
      this.sys.ioctl(this.control(), dmRequest(cmd), buf, body.name ?? this.controlPath);
      if (!(decodeDmHeader(buf).flags & DM_BUFFER_FULL_FLAG) || size > 4 * 1024 * 1024) return buf;
    }
  }

  /** The driver's interface version. */
  version(): [number, number, number] {
    return decodeDmHeader(this.call(DmCmd.VERSION, {})).version;
  }

  /** Loaded target types and their versions. */
  targetVersions(): Map<string, [number, number, number]> {
    return decodeDmVersions(this.call(DmCmd.LIST_VERSIONS, {}));
  }

  /** Create device `name`; returns its device number. */
  create(name: string, uuid?: string): { major: number; minor: number } {
    return decodeHugeDev(decodeDmHeader(this.call(DmCmd.DEV_CREATE, { name, ...(uuid ? { uuid } : {}) })).dev);
  }

  /** Load a table into the inactive slot. */
  load(name: string, targets: DmTarget[], readonly = false): void {
    this.call(DmCmd.TABLE_LOAD, { name, targets, flags: readonly ? DM_READONLY_FLAG : 0 });
  }

  /** Resume (making a loaded table live). */
  resume(name: string): void {
    this.call(DmCmd.DEV_SUSPEND, { name, flags: 0 });
  }

  suspend(name: string): void {
    this.call(DmCmd.DEV_SUSPEND, { name, flags: DM_SUSPEND_FLAG });
  }

  remove(name: string): void {
    this.call(DmCmd.DEV_REMOVE, { name });
  }

  /** Header of `name`, or undefined when it does not exist (ENXIO). */
  info(name: string): DmHeader | undefined {
    try {
      return decodeDmHeader(this.call(DmCmd.DEV_STATUS, { name }));
    } catch (err) {
      if ((err as { errno?: number }).errno === 6) return undefined; // ENXIO
      throw err;
    }
  }

  /** The status line(s) of `name`'s live table. */
  status(name: string): DmTarget[] {
    return decodeDmTargets(this.call(DmCmd.TABLE_STATUS, { name }));
  }

  /** Send a message to a target (thin-pool: create_thin, create_snap, delete). */
  message(name: string, text: string, sector = 0n): void {
    this.call(DmCmd.TARGET_MSG, { name, message: { sector, text } });
  }

  close(): void {
    if (this.fd !== undefined) this.sys.close(this.fd);
    this.fd = undefined;
  }
}
