/** The BuildKit service's composition: Bunker's builder, the image store, the host's platforms. */
import type { BuildService } from "../build/build-service.ts";
import type { BuildkitService } from "../buildkit/buildkit-service.ts";
import type { ImageService } from "../image/image-service.ts";

/** The BuildKit service (`/grpc`, `/session`), its modules loaded on the first buildx call. */
export async function makeBuildkitService(images: () => Promise<ImageService>, builds: () => Promise<BuildService>): Promise<BuildkitService> {
  const [{ BuildkitService }, { hostPlatforms }] = await Promise.all([import("../buildkit/buildkit-service.ts"), import("../buildkit/platforms.ts")]);
  return new BuildkitService({
    builds,
    platforms: () => hostPlatforms(),
    imageConfig: async (name) => {
      const store = await images();
      try {
        const img = store.image(name);
        return { id: img.id, config: img.config };
      } catch {
        return undefined;
      }
    },
  });
}
