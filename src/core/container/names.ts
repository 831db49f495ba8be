/**
 * Names for containers created without one, in Docker's style (`adjective_noun`). The word lists
 * are this project's own.
 */
const ADJECTIVES = [
  "brave",
  "calm",
  "clever",
  "eager",
  "fair",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "kind",
  "lively",
  "lucid",
  "merry",
  "nimble",
  "proud",
  "quick",
  "quiet",
  "sharp",
  "silly",
  "steady",
  "sunny",
  "swift",
  "tender",
  "tidy",
  "vivid",
  "wise",
  "witty",
  "zealous",
  "bold",
  "bright",
];
const NOUNS = [
  "otter",
  "falcon",
  "badger",
  "heron",
  "lynx",
  "marten",
  "osprey",
  "panda",
  "puffin",
  "raven",
  "salmon",
  "seal",
  "sparrow",
  "tapir",
  "walrus",
  "wombat",
  "yak",
  "zebra",
  "beaver",
  "bison",
  "crane",
  "dingo",
  "egret",
  "ferret",
  "gecko",
  "ibis",
  "jackal",
  "koala",
  "lemur",
  "moose",
];

/** A random `adjective_noun`. */
export function randomName(): string {
  const pick = (a: string[]) => a[Math.floor(Math.random() * a.length)]!;
  return `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
}
