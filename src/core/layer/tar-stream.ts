/**
 * Streaming tar reader and writer. The reader yields entries whose bodies stream from the source
 * (a body not read is skipped); it applies PAX and GNU long-name headers, verifies checksums, and
 * reports a truncated archive as an error rather than a short file. The writer emits ustar blocks
 * with PAX extensions wherever ustar cannot hold a value exactly (long or non-ASCII names, big
 * ids and sizes, sub-second times, xattrs).
 */
import { invalidArgument } from "../errors.ts";
import { applyPax, BLOCK, encodePax, headerBlock, isZeroBlock, padding, parseHeaderBlock, parsePax, paxRecords, type TarHeader } from "./tar-header.ts";

/** A member as read: header plus its body. */
export interface TarEntry {
  header: TarHeader;
  /** The member's data; must be consumed before asking for the next entry, or it is skipped. */
  body: AsyncIterable<Uint8Array>;
}

/** Pulls exact byte counts out of a chunked source. */
class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private readonly it: AsyncIterator<Uint8Array>;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.it =
      Symbol.asyncIterator in source
        ? source[Symbol.asyncIterator]()
        : (async function* () {
            yield* source;
          })();
  }

  /** Fill until `n` bytes are buffered; false when the source ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
    return this.buffered >= n;
  }

  /** Exactly `n` bytes, or undefined at a clean end (nothing buffered). Throws on a partial read. */
  async exact(n: number): Promise<Uint8Array | undefined> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return undefined;
      throw invalidArgument("tar: unexpected end of archive");
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.buffered -= n;
    return out;
  }

  /** Up to `max` bytes as they are available (at least one); throws at end of source. */
  async some(max: number): Promise<Uint8Array> {
    if (!(await this.fill(1))) throw invalidArgument("tar: unexpected end of archive");
    const c = this.chunks[0]!;
    const take = Math.min(c.length, max);
    if (take === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(take);
    this.buffered -= take;
    return c.subarray(0, take);
  }
}

async function readAll(r: ByteReader, size: number, what: string, limit = 1024 * 1024): Promise<Uint8Array> {
  if (size > limit) throw invalidArgument(`tar: ${what} of ${size} bytes exceeds ${limit}`);
  const data = (await r.exact(size)) ?? new Uint8Array(0);
  if (data.length < size) throw invalidArgument("tar: unexpected end of archive");
  await r.exact(padding(size));
  return data;
}

/** Read a tar stream entry by entry. */
export async function* readTar(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source);
  let globalPax = new Map<string, Uint8Array>();
  let pax: Map<string, Uint8Array> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await r.exact(BLOCK);
    if (!block) return; // clean end on a block boundary without the zero blocks: accepted, as Go's archive/tar does
    if (isZeroBlock(block)) return; // end of archive (a second zero block may follow)
    const { flag, header } = parseHeaderBlock(block);
    if (flag === "x" || flag === "g") {
      const recs = parsePax(await readAll(r, header.size, "PAX header"));
      if (flag === "g") globalPax = new Map([...globalPax, ...recs]);
      else pax = new Map([...(pax ?? []), ...recs]);
      continue;
    }
    if (flag === "L" || flag === "K") {
      const text = new TextDecoder().decode(await readAll(r, header.size, "GNU long name")).replace(/\0+$/, "");
      if (flag === "L") longName = text;
      else longLink = text;
      continue;
    }
    if (!"01234567\0".includes(flag)) throw invalidArgument(`tar: unsupported entry type ${JSON.stringify(flag)} for ${header.name}`);
    if (longName !== undefined) header.name = longName;
    if (longLink !== undefined) header.linkname = longLink;
    applyPax(header, globalPax);
    if (pax) applyPax(header, pax);
    pax = longName = longLink = undefined;
    // Only regular files carry data that belongs to the entry; for links and devices the size
    // field is still honoured so the stream stays aligned.
    const size = header.size;
    let remaining = size;
    const body = (async function* () {
      while (remaining > 0) {
        const c = await r.some(Math.min(remaining, 256 * 1024));
        remaining -= c.length;
        yield c;
      }
    })();
    yield { header, body };
    while (remaining > 0) remaining -= (await r.some(Math.min(remaining, 256 * 1024))).length;
    // The last member's padding may be missing when the stream simply ends there (the docker CLI
    // sends such a tar when it adds a Dockerfile from outside the context; Go's reader accepts it).
    if (size > 0 && padding(size) > 0 && !(await r.exact(padding(size)))) return; // a partial padding throws in exact()
  }
}

/** A member to write; `body` must produce exactly `header.size` bytes for files. */
export interface TarInput {
  header: Omit<TarHeader, "uname" | "gname" | "devmajor" | "devminor" | "xattrs" | "linkname"> & Partial<TarHeader>;
  body?: AsyncIterable<Uint8Array> | Uint8Array;
}

/** Fill in the optional header fields. */
export function fullHeader(h: TarInput["header"]): TarHeader {
  return { linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0, xattrs: {}, ...h };
}

/** Write entries as a tar stream, ending with two zero blocks. */
export async function* writeTar(entries: AsyncIterable<TarInput> | Iterable<TarInput>): AsyncGenerator<Uint8Array> {
  for await (const e of entries as AsyncIterable<TarInput>) {
    const h = fullHeader(e.header);
    if (h.type !== "file") h.size = 0;
    const recs = paxRecords(h);
    if (recs.size) {
      const data = encodePax(recs);
      const name = `PaxHeaders.0/${h.name.split("/").filter(Boolean).at(-1) ?? "x"}`.slice(0, 100);
      yield headerBlock({ ...h, name, type: "file", size: data.length, linkname: "", xattrs: {} }, "x", { prefix: "", name });
      yield data;
      yield new Uint8Array(padding(data.length));
    }
    yield headerBlock(h);
    if (h.type !== "file") continue;
    let written = 0;
    const body = e.body instanceof Uint8Array ? [e.body] : (e.body ?? []);
    for await (const c of body as AsyncIterable<Uint8Array>) {
      written += c.length;
      if (written > h.size) throw invalidArgument(`tar: ${h.name}: body longer than its declared size ${h.size}`);
      yield c;
    }
    if (written !== h.size) throw invalidArgument(`tar: ${h.name}: body is ${written} bytes, header says ${h.size}`);
    yield new Uint8Array(padding(h.size));
  }
  yield new Uint8Array(BLOCK * 2);
}
