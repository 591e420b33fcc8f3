import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const dynamodb = new DynamoDBClient(clientConfig);
