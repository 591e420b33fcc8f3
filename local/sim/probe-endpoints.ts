/**
 * The two metadata endpoints a probe run is pointed at. Every local probe run (tests, bench, the local runner) goes
 * through runLinuxProbe or runWindowsProbe, and both refuse anything but loopback: a run that forgot an override
 * would otherwise reach the real 169.254.169.254 or fd00:ec2::254 of whatever machine it runs on.
 */
export interface ProbeEndpoints {
  /** IMDS_ENDPOINT, e.g. http://127.0.0.1:PORT */
  v4: string;
  /** IMDS_ENDPOINT_V6, e.g. http://[::1]:PORT */
  v6: string;
}

const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\]):\d+\/?$/;

/** Throws unless both endpoints are loopback URLs with an explicit port. */
export function assertLoopbackEndpoints(endpoints: ProbeEndpoints): void {
  for (const [name, url] of Object.entries(endpoints)) {
    if (!LOOPBACK.test(url)) {
      throw new Error(`probe endpoint ${name} must be http://127.0.0.1:PORT or http://[::1]:PORT, got ${url}`);
    }
  }
}

/** The environment that points a probe at the endpoints, with the scripts' own loopback tripwire armed. */
export function probeEnvironment(endpoints: ProbeEndpoints): Record<string, string> {
  assertLoopbackEndpoints(endpoints);
  return { IMDS_ENDPOINT: endpoints.v4, IMDS_ENDPOINT_V6: endpoints.v6, IMDS_PROBE_LOOPBACK_ONLY: "1" };
}
