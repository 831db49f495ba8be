import { describe, expect, test } from "bun:test";
import { Filters } from "../../src/core/filters.ts";
import { decodeEvent, encodeEvent, EventBus, EVENT_HISTORY, matchesEvent, parseEventTime } from "../../src/core/events/bus.ts";

describe("event bus", () => {
  test("fills time, legacy fields for containers, strictly increasing timeNano", () => {
    let t = 1_700_000_000_000_000_000n;
    const bus = new EventBus(() => t);
    const a = bus.publish({ Type: "container", Action: "start", Actor: { ID: "c1", Attributes: { image: "busybox", name: "web" } } });
    const b = bus.publish({ Type: "daemon", Action: "reload", Actor: { ID: "d" } });
    expect(a).toMatchObject({ status: "start", id: "c1", from: "busybox", scope: "local", time: 1_700_000_000 });
    expect(b.status).toBeUndefined();
    expect(b.timeNano).toBe(a.timeNano + 1n);
    t += 5n;
    expect(bus.publish({ Type: "daemon", Action: "x", Actor: { ID: "d" } }).timeNano).toBe(1_700_000_000_000_000_005n);
  });

  test("history honours since/until and keeps the last EVENT_HISTORY events", () => {
    let t = 1000n;
    const bus = new EventBus(() => (t += 10n));
    for (let i = 0; i < EVENT_HISTORY + 10; i++) bus.publish({ Type: "daemon", Action: `a${i}`, Actor: { ID: "d" } });
    const all = bus.history(new Filters());
    expect(all.length).toBe(EVENT_HISTORY);
    expect(all[0]!.Action).toBe("a10");
    const window = bus.history(new Filters(), all[5]!.timeNano, all[7]!.timeNano);
    expect(window.map((e) => e.Action)).toEqual(["a15", "a16", "a17"]);
  });

  test("subscribers get matching events until closed", () => {
    const bus = new EventBus();
    const got: string[] = [];
    const sub = bus.subscribe(Filters.parse('{"type":["container"]}'), (e) => got.push(e.Action));
    bus.publish({ Type: "daemon", Action: "reload", Actor: { ID: "d" } });
    bus.publish({ Type: "container", Action: "die", Actor: { ID: "c" } });
    expect(bus.subscriberCount).toBe(1);
    sub.close();
    bus.publish({ Type: "container", Action: "start", Actor: { ID: "c" } });
    expect(got).toEqual(["die"]);
    expect(bus.subscriberCount).toBe(0);
  });

  test("moby's filter semantics: container by name or id prefix, image on container events, exec actions", () => {
    const bus = new EventBus();
    const c = bus.publish({ Type: "container", Action: "exec_start: sh -c true", Actor: { ID: "abcdef", Attributes: { name: "web", image: "busybox", "com.x": "1" } } });
    const m = (f: string) => matchesEvent(Filters.parse(f), c);
    expect(m('{"container":["web"]}')).toBe(true);
    expect(m('{"container":["abc"]}')).toBe(true);
    expect(m('{"container":["other"]}')).toBe(false);
    expect(m('{"image":["busybox"]}')).toBe(true);
    expect(m('{"event":["exec_start"]}')).toBe(true);
    expect(m('{"label":["com.x=1"]}')).toBe(true);
    expect(m('{"label":["com.x=2"]}')).toBe(false);
    expect(m('{"daemon":["x"]}')).toBe(false);
  });

  test("wire encoding keeps int64 timeNano exact", () => {
    const bus = new EventBus(() => 1795842543875796507n);
    const line = encodeEvent(bus.publish({ Type: "daemon", Action: "reload", Actor: { ID: "d" } }));
    expect(line).toContain('"timeNano":1795842543875796507}');
    expect(decodeEvent(line).timeNano).toBe(1795842543875796507n);
  });

  test("timestamps: seconds.nanos and RFC 3339", () => {
    expect(parseEventTime("1700000000.5", "since")).toBe(1_700_000_000_500_000_000n);
    expect(parseEventTime("1700000000", "since")).toBe(1_700_000_000_000_000_000n);
    expect(parseEventTime("2023-11-14T22:13:20Z", "since")).toBe(1_700_000_000_000_000_000n);
    expect(() => parseEventTime("yesterday", "since")).toThrow("invalid value for since");
  });
});
