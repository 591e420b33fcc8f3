import { Logger } from "@aws-lambda-powertools/logger";

/** The one structured JSON logger; steps append `eventId` and the instance ids they act on. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "imdsv2-guard" });
