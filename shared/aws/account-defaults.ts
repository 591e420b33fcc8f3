import {
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
} from "@aws-sdk/client-ec2";
import type { AccountPosture } from "../domain/account-posture.js";
import { classifyAwsError } from "./errors.js";

/** Reads the account's IMDS defaults for the client's region. */
export async function readAccountPosture(ec2: EC2Client): Promise<AccountPosture> {
  try {
    const out = await ec2.send(new GetInstanceMetadataDefaultsCommand({}));
    const level = out.AccountLevel ?? {};
    return {
      httpTokens: level.HttpTokens ?? "no-preference",
      httpTokensEnforced: level.HttpTokensEnforced === "enabled",
      managedBy: level.ManagedBy ?? "account",
    };
  } catch (error) {
    throw classifyAwsError(error, "GetInstanceMetadataDefaults");
  }
}

/**
 * Sets the account default to HttpTokens=required, so new launches start on IMDSv2 with no exposure window; the
 * guard stays the proof and the net. Leaves a default managed by a declarative policy alone (EC2 would refuse).
 */
export async function requireTokensByDefault(ec2: EC2Client, posture: AccountPosture): Promise<AccountPosture> {
  if (posture.httpTokens === "required" || posture.managedBy === "declarative-policy") return posture;
  try {
    await ec2.send(new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: "required" }));
  } catch (error) {
    throw classifyAwsError(error, "ModifyInstanceMetadataDefaults");
  }
  return { ...posture, httpTokens: "required", changedByGuard: true };
}
