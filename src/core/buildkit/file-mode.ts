/**
 * Go's `os.FileMode` layout, in which fsutil's Stat carries a file's type and permissions: the
 * nine permission bits, then type and special bits from the top (ModeDir is bit 31).
 */

export const GO_MODE = {
  dir: 1 << 31,
  append: 1 << 30,
  exclusive: 1 << 29,
  temporary: 1 << 28,
  symlink: 1 << 27,
  device: 1 << 26,
  namedPipe: 1 << 25,
  socket: 1 << 24,
  setuid: 1 << 23,
  setgid: 1 << 22,
  charDevice: 1 << 21,
  sticky: 1 << 20,
  irregular: 1 << 19,
} as const;

/** The kind of file a Go mode names. */
export type GoFileKind = "dir" | "symlink" | "file" | "fifo" | "socket" | "char" | "block" | "other";

/** The kind of file `mode` (a uint32 off the wire) names. */
export function goKind(mode: number): GoFileKind {
  const m = mode >>> 0;
  if (m & GO_MODE.dir) return "dir";
  if (m & GO_MODE.symlink) return "symlink";
  if (m & GO_MODE.namedPipe) return "fifo";
  if (m & GO_MODE.socket) return "socket";
  if (m & GO_MODE.device) return m & GO_MODE.charDevice ? "char" : "block";
  if (m & (GO_MODE.irregular | GO_MODE.charDevice)) return "other";
  return "file";
}

/** The Unix permission and special bits (0o7777) of a Go mode. */
export function goToUnixPerm(mode: number): number {
  const m = mode >>> 0;
  return (m & 0o777) | (m & GO_MODE.setuid ? 0o4000 : 0) | (m & GO_MODE.setgid ? 0o2000 : 0) | (m & GO_MODE.sticky ? 0o1000 : 0);
}

/** A Unix `st_mode` as a Go mode (the inverse of {@link goKind} and {@link goToUnixPerm}). */
export function unixToGoMode(stMode: number): number {
  const type = stMode & 0o170000;
  let m = stMode & 0o777;
  if (stMode & 0o4000) m |= GO_MODE.setuid;
  if (stMode & 0o2000) m |= GO_MODE.setgid;
  if (stMode & 0o1000) m |= GO_MODE.sticky;
  if (type === 0o040000) m |= GO_MODE.dir;
  else if (type === 0o120000) m |= GO_MODE.symlink;
  else if (type === 0o010000) m |= GO_MODE.namedPipe;
  else if (type === 0o140000) m |= GO_MODE.socket;
  else if (type === 0o020000) m |= GO_MODE.device | GO_MODE.charDevice;
  else if (type === 0o060000) m |= GO_MODE.device;
  return m >>> 0;
}
