/**
 * The number of images on disk, read without loading the image subsystem (for `/info` on an
 * idle daemon). The format is the image store's own `images.json`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Images recorded under `imageRoot`; 0 when there is no store yet. */
export function countImages(imageRoot: string): number {
  try {
    return Object.keys(JSON.parse(readFileSync(join(imageRoot, "images.json"), "utf8")).images ?? {}).length;
  } catch {
    return 0;
  }
}
