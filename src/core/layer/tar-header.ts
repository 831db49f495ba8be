/**
 * Tar headers: the 512-byte ustar block (with GNU base-256 numbers), PAX extended records
 * (`path`, `linkpath`, `size`, ids, names, times, `SCHILY.xattr.*`), and GNU long names (`L`/`K`).
 * Shared by the streaming reader and writer.
 */
import { concatBytes } from "../bytes.ts";
import { invalidArgument } from "../errors.ts";

/** Entry kinds, named by what they create. */
export type EntryType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "directory" | "fifo";

/** One archive member's metadata. */
export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; fractional when PAX carries sub-second time. */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes by name (from `SCHILY.xattr.*`). */
  xattrs: Record<string, Uint8Array>;
}

export const BLOCK = 512;

const TYPE_FLAGS: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "chardev",
  "4": "blockdev",
  "5": "directory",
  "6": "fifo",
};
const FLAG_OF: Record<EntryType, string> = { file: "0", hardlink: "1", symlink: "2", chardev: "3", blockdev: "4", directory: "5", fifo: "6" };

const dec = new TextDecoder();
const enc = new TextEncoder();

/** Raw header block fields before PAX/GNU overrides are applied. */
export interface RawHeader {
  flag: string;
  header: TarHeader;
}

/** True for an all-zero block (end of archive marker). */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function cstring(b: Uint8Array, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return dec.decode(nul < 0 ? s : s.subarray(0, nul));
}

/** Octal ASCII, or GNU base-256 when the first byte's high bit is set. */
function number(b: Uint8Array, off: number, len: number, field: string): number {
  const s = b.subarray(off, off + len);
  if (s[0]! & 0x80) {
    let v = BigInt(s[0]! & 0x7f);
    for (let i = 1; i < s.length; i++) v = (v << 8n) | BigInt(s[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`tar header: ${field} too large`);
    return Number(v);
  }
  const text = cstring(b, off, len).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw invalidArgument(`tar header: invalid ${field} ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

/** Parse a header block, checking its checksum. */
export function parseHeaderBlock(b: Uint8Array): RawHeader {
  const notTar = () => invalidArgument("tar header: checksum mismatch (corrupt or not a tar archive)");
  let stored: number;
  try {
    stored = number(b, 148, 8, "checksum");
  } catch {
    throw notTar();
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw notTar();
  const flag = String.fromCharCode(b[156]!);
  const magic = cstring(b, 257, 6);
  // POSIX ustar ("ustar\0") has a name prefix at 345; GNU ("ustar  ") keeps other fields there.
  const prefix = magic === "ustar" && b[345] !== 0 ? cstring(b, 345, 155) : "";
  const name = cstring(b, 0, 100);
  return {
    flag,
    header: {
      name: prefix ? `${prefix}/${name}` : name,
      type: TYPE_FLAGS[flag] ?? "file",
      mode: number(b, 100, 8, "mode") & 0o7777,
      uid: number(b, 108, 8, "uid"),
      gid: number(b, 116, 8, "gid"),
      size: number(b, 124, 12, "size"),
      mtime: number(b, 136, 12, "mtime"),
      linkname: cstring(b, 157, 100),
      uname: cstring(b, 265, 32),
      gname: cstring(b, 297, 32),
      devmajor: number(b, 329, 8, "devmajor"),
      devminor: number(b, 337, 8, "devminor"),
      xattrs: {},
    },
  };
}

/** Parse PAX records (`"<len> <key>=<value>\n"`); values stay bytes (xattrs may be binary). */
export function parsePax(data: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // padding
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw invalidArgument("tar PAX header: malformed record");
    const len = Number(dec.decode(data.subarray(i, sp)));
    if (!Number.isInteger(len) || len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw invalidArgument("tar PAX header: bad record length");
    }
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw invalidArgument("tar PAX header: record without '='");
    out.set(dec.decode(rec.subarray(0, eq)), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** Apply PAX overrides to a header. */
export function applyPax(h: TarHeader, pax: Map<string, Uint8Array>): void {
  for (const [key, raw] of pax) {
    const val = dec.decode(raw);
    const num = (field: string) => {
      if (!/^\d+(\.\d+)?$/.test(val)) throw invalidArgument(`tar PAX header: invalid ${field} ${JSON.stringify(val)}`);
      return Number(val);
    };
    if (key === "path") h.name = val;
    else if (key === "linkpath") h.linkname = val;
    else if (key === "size") h.size = num(key);
    else if (key === "uid") h.uid = num(key);
    else if (key === "gid") h.gid = num(key);
    else if (key === "uname") h.uname = val;
    else if (key === "gname") h.gname = val;
    else if (key === "mtime") h.mtime = num(key);
    else if (key.startsWith("SCHILY.xattr.")) h.xattrs[key.slice("SCHILY.xattr.".length)] = raw;
    else if (key.startsWith("LIBARCHIVE.xattr.")) {
      h.xattrs[decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length))] = Uint8Array.from(atob(val), (c) => c.charCodeAt(0));
    }
  }
}

function putString(b: Uint8Array, off: number, len: number, s: string): void {
  const bytes = enc.encode(s);
  b.set(bytes.subarray(0, len), off);
}

function putOctal(b: Uint8Array, off: number, len: number, v: number): void {
  putString(
    b,
    off,
    len,
    Math.floor(v)
      .toString(8)
      .padStart(len - 1, "0"),
  );
}

const fitsOctal = (v: number, len: number) => Number.isInteger(v) && v >= 0 && v < 8 ** (len - 1);
const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/** Split a long path into ustar prefix (≤155) and name (≤100), if possible. */
function splitUstar(path: string): { prefix: string; name: string } | undefined {
  if (enc.encode(path).length <= 100) return { prefix: "", name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (name && enc.encode(name).length <= 100 && enc.encode(prefix).length <= 155) return { prefix, name };
  }
  return undefined;
}

/** Build one ustar header block. */
export function headerBlock(h: TarHeader, flag: string = FLAG_OF[h.type], nameOverride?: { prefix: string; name: string }): Uint8Array {
  const b = new Uint8Array(BLOCK);
  const split = nameOverride ?? splitUstar(h.name) ?? { prefix: "", name: h.name.slice(0, 100) };
  putString(b, 0, 100, split.name);
  putOctal(b, 100, 8, h.mode & 0o7777);
  putOctal(b, 108, 8, fitsOctal(h.uid, 8) ? h.uid : 0);
  putOctal(b, 116, 8, fitsOctal(h.gid, 8) ? h.gid : 0);
  putOctal(b, 124, 12, fitsOctal(h.size, 12) ? h.size : 0);
  putOctal(b, 136, 12, fitsOctal(Math.floor(h.mtime), 12) ? Math.floor(h.mtime) : 0);
  b.fill(0x20, 148, 156);
  b[156] = flag.charCodeAt(0);
  putString(b, 157, 100, h.linkname);
  putString(b, 257, 8, "ustar\u000000");
  putString(b, 265, 32, h.uname);
  putString(b, 297, 32, h.gname);
  putOctal(b, 329, 8, h.devmajor);
  putOctal(b, 337, 8, h.devminor);
  putString(b, 345, 155, split.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  putString(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** PAX records needed to represent `h` exactly (empty when plain ustar suffices). */
export function paxRecords(h: TarHeader): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  const str = (k: string, v: string) => m.set(k, enc.encode(v));
  if (!splitUstar(h.name) || !isAscii(h.name)) str("path", h.name);
  if (enc.encode(h.linkname).length > 100 || !isAscii(h.linkname)) str("linkpath", h.linkname);
  if (!fitsOctal(h.size, 12)) str("size", String(h.size));
  if (!fitsOctal(h.uid, 8)) str("uid", String(h.uid));
  if (!fitsOctal(h.gid, 8)) str("gid", String(h.gid));
  if (enc.encode(h.uname).length > 32 || !isAscii(h.uname)) str("uname", h.uname);
  if (enc.encode(h.gname).length > 32 || !isAscii(h.gname)) str("gname", h.gname);
  if (!Number.isInteger(h.mtime) || !fitsOctal(h.mtime, 12)) str("mtime", String(h.mtime));
  for (const [k, v] of Object.entries(h.xattrs)) m.set(`SCHILY.xattr.${k}`, v);
  return m;
}

/** Encode PAX records as the body of an `x` entry. */
export function encodePax(records: Map<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of records) {
    const body = new Uint8Array([...enc.encode(` ${k}=`), ...v, 0x0a]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(enc.encode(String(len)), body);
  }
  return concatBytes(parts.length ? parts : [new Uint8Array(0)]);
}

/** Bytes of padding after `size` bytes of data. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
