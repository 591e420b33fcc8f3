import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const scheduler = new SchedulerClient(clientConfig);
