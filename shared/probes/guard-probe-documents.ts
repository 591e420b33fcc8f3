import {
  type ProbeDocumentContent,
  type ProbePlatform,
  probeDocumentContent,
  probeDocumentDigest,
} from "./probe-document.js";
import probeLinux from "./probe-linux.sh";
import probeWindows from "./probe-windows.ps1";

/** The probe scripts as this build ships them (esbuild's text loader): what the deployed documents must hold. */
export const PROBE_SCRIPTS: Record<ProbePlatform, string> = { linux: probeLinux, windows: probeWindows };

/** The documents this build expects in every account it probes, and their digests. */
export const GUARD_PROBE_DOCUMENTS: Record<ProbePlatform, { content: ProbeDocumentContent; digest: string }> = {
  linux: built("linux"),
  windows: built("windows"),
};

function built(platform: ProbePlatform): { content: ProbeDocumentContent; digest: string } {
  const content = probeDocumentContent(platform, PROBE_SCRIPTS[platform]);
  return { content, digest: probeDocumentDigest(content) };
}
