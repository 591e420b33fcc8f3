// dynalite ships no type declarations; this is the part of its API the simulated ledger uses.
declare module "dynalite" {
  import type { Server } from "node:http";

  interface DynaliteOptions {
    /** How long a new table stays CREATING, in milliseconds (on a timer). */
    createTableMs?: number;
    /** The largest item, in KB (DynamoDB's 400 by default). */
    maxItemSizeKb?: number;
    /** A LevelDB directory; without it the store is memory-level, in memory. */
    path?: string;
  }
  export default function dynalite(options?: DynaliteOptions): Server;
}
