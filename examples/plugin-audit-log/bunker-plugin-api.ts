/**
 * Type-only view of Bunker's plugin API for this example (erased at run time). A real
 * third-party package would take these from Bunker's published type declarations.
 */
export type {
  EventSink,
  PluginHostApi,
  Registration,
} from "../../src/core/plugin/types.ts";
export type { EventMessage } from "../../src/core/events/bus.ts";
