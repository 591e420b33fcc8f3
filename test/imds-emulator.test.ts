import { request as httpRequest } from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CREDENTIALS_PATH,
  type ImdsOptionsView,
  type RunningImdsEmulator,
  startImdsEmulator,
  startTokenCollector,
} from "../local/sim/imds-emulator.js";

const TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER = "X-aws-ec2-metadata-token";

let options: ImdsOptionsView;
let emulator: RunningImdsEmulator;

beforeEach(async () => {
  options = { httpTokens: "required", httpEndpoint: "enabled" };
  emulator = await startImdsEmulator(() => options);
});

afterEach(async () => {
  vi.useRealTimers();
  await emulator.close();
});

function putToken(headers: Record<string, string> = { [TTL_HEADER]: "60" }): Promise<Response> {
  return fetch(`${emulator.url}/latest/api/token`, { method: "PUT", headers });
}

async function newToken(ttlSeconds = "60"): Promise<string> {
  const response = await putToken({ [TTL_HEADER]: ttlSeconds });
  expect(response.status).toBe(200);
  return response.text();
}

function getMetadata(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${emulator.url}/latest/meta-data/`, { headers });
}

describe("token endpoint", () => {
  it("issues a token with its TTL and remembers it", async () => {
    // Act
    const response = await putToken({ [TTL_HEADER]: "21600" });
    const token = await response.text();

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get(TTL_HEADER)).toBe("21600");
    expect(token).toMatch(/^[A-Za-z0-9+/=]{40,}$/);
    expect(emulator.issuedTokens).toEqual([token]);
  });

  it.each([
    ["missing", {}],
    ["zero", { [TTL_HEADER]: "0" }],
    ["above 21600", { [TTL_HEADER]: "21601" }],
    ["not an integer", { [TTL_HEADER]: "6.5" }],
    ["not a number", { [TTL_HEADER]: "soon" }],
  ])("answers 400 when the TTL is %s", async (_case, headers: Record<string, string>) => {
    // Act
    const response = await putToken(headers);

    // Assess
    expect(response.status).toBe(400);
    expect(emulator.issuedTokens).toEqual([]);
  });

  it("answers 405 to a GET", async () => {
    // Act
    const response = await fetch(`${emulator.url}/latest/api/token`, { headers: { [TTL_HEADER]: "60" } });

    // Assess
    expect(response.status).toBe(405);
  });

  it("answers 403 to a request that went through a proxy", async () => {
    // Act
    const response = await putToken({ [TTL_HEADER]: "60", "X-Forwarded-For": "10.0.0.7" });

    // Assess
    expect(response.status).toBe(403);
    expect(emulator.issuedTokens).toEqual([]);
  });
});

describe("metadata", () => {
  it("answers a valid token with the listing", async () => {
    // Prepare
    const token = await newToken();

    // Act
    const response = await getMetadata({ [TOKEN_HEADER]: token });

    // Assess
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("instance-id\n");
  });

  it.each(["required", "optional"] as const)("answers 401 to an unknown token when tokens are %s", async (tokens) => {
    // Prepare
    options = { httpTokens: tokens, httpEndpoint: "enabled" };

    // Act
    const response = await getMetadata({ [TOKEN_HEADER]: "not-a-token" });

    // Assess
    expect(response.status).toBe(401);
  });

  it("answers 401 to an expired token", async () => {
    // Prepare: only Date is faked, so the HTTP machinery keeps its real timers
    vi.useFakeTimers({ toFake: ["Date"] });
    const token = await newToken("1");
    vi.setSystemTime(Date.now() + 1_001);

    // Act
    const response = await getMetadata({ [TOKEN_HEADER]: token });

    // Assess
    expect(response.status).toBe(401);
  });

  it("answers 401 without a token only when tokens are required", async () => {
    // Act
    const whenRequired = await getMetadata();
    options = { httpTokens: "optional", httpEndpoint: "enabled" };
    const whenOptional = await getMetadata();

    // Assess
    expect(whenRequired.status).toBe(401);
    expect(whenOptional.status).toBe(200);
  });

  it("answers 404 to an unknown path", async () => {
    // Act
    const response = await fetch(`${emulator.url}/latest/user-data-of-someone-else`);

    // Assess
    expect(response.status).toBe(404);
  });
});

describe("options and lifecycle", () => {
  it("answers 403 to everything when the endpoint is disabled", async () => {
    // Prepare
    options = { httpTokens: "optional", httpEndpoint: "disabled" };

    // Act
    const token = await putToken();
    const metadata = await getMetadata();

    // Assess
    expect(token.status).toBe(403);
    expect(metadata.status).toBe(403);
  });

  it("follows a change of options between requests", async () => {
    // Prepare
    options = { httpTokens: "optional", httpEndpoint: "enabled" };
    const token = await newToken();

    // Act
    const beforeEnforcement = await getMetadata();
    options = { httpTokens: "required", httpEndpoint: "enabled" };
    const afterEnforcement = await getMetadata();
    const withToken = await getMetadata({ [TOKEN_HEADER]: token });
    options = { httpTokens: "required", httpEndpoint: "disabled" };
    const afterDisabling = await getMetadata({ [TOKEN_HEADER]: token });

    // Assess
    expect([beforeEnforcement.status, afterEnforcement.status, withToken.status, afterDisabling.status]).toEqual([
      200, 401, 200, 403,
    ]);
    expect(emulator.requests.map((request) => request.method)).toEqual(["PUT", "GET", "GET", "GET", "GET"]);
  });

  it("closes promptly while a hanging emulator holds a request open", async () => {
    // Prepare
    const hanging = await startImdsEmulator(() => options, { mode: "hang" });
    const pending = fetch(`${hanging.url}/latest/meta-data/`).catch((error: unknown) => error);
    await vi.waitFor(() => expect(hanging.requests).toHaveLength(1));

    // Act
    const startedAt = Date.now();
    await hanging.close();

    // Assess
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe("hostile modes", () => {
  it("serves the credentials path behind the same token rule as the listing", async () => {
    // Act
    const refused = await fetch(`${emulator.url}${CREDENTIALS_PATH}`);
    const token = await newToken();
    const answered = await fetch(`${emulator.url}${CREDENTIALS_PATH}`, { headers: { [TOKEN_HEADER]: token } });

    // Assess
    expect(refused.status).toBe(401);
    expect(answered.status).toBe(200);
    expect(await answered.text()).toBe("imdsv2-guard-sim-role\n");
  });

  it("gates-listing-only refuses the listing but serves the credentials path to anyone", async () => {
    // Prepare
    const gating = await startImdsEmulator(() => options, { mode: "gates-listing-only" });

    try {
      // Act
      const listing = await fetch(`${gating.url}/latest/meta-data/`);
      const credentials = await fetch(`${gating.url}${CREDENTIALS_PATH}`);

      // Assess
      expect(listing.status).toBe(401);
      expect(credentials.status).toBe(200);
    } finally {
      await gating.close();
    }
  });

  it("redirect answers the token PUT but sends every GET elsewhere", async () => {
    // Prepare
    const collector = await startTokenCollector();
    const redirecting = await startImdsEmulator(() => options, { mode: "redirect", redirectTo: collector.url });

    try {
      // Act
      const put = await fetch(`${redirecting.url}/latest/api/token`, {
        method: "PUT",
        headers: { [TTL_HEADER]: "60" },
      });
      const get = await fetch(`${redirecting.url}/latest/meta-data/`, { redirect: "manual" });

      // Assess
      expect(put.status).toBe(200);
      expect(get.status).toBe(302);
      expect(get.headers.get("location")).toBe(`${collector.url}/latest/meta-data/`);
      expect(collector.received).toEqual([]);
    } finally {
      await redirecting.close();
      await collector.close();
    }
  });

  it("the collector records the token it is sent, and answers what would fool a follower", async () => {
    // Prepare
    const collector = await startTokenCollector();

    try {
      // Act
      const without = await fetch(`${collector.url}/latest/meta-data/`);
      const withToken = await fetch(`${collector.url}/latest/meta-data/`, { headers: { [TOKEN_HEADER]: "stolen" } });

      // Assess
      expect([without.status, withToken.status]).toEqual([401, 200]);
      expect(collector.received).toEqual([
        { method: "GET", path: "/latest/meta-data/", token: undefined },
        { method: "GET", path: "/latest/meta-data/", token: "stolen" },
      ]);
    } finally {
      await collector.close();
    }
  });

  it("error-500 answers 500 to everything, token PUT included", async () => {
    // Prepare
    const failing = await startImdsEmulator(() => options, { mode: "error-500" });

    try {
      // Act
      const put = await fetch(`${failing.url}/latest/api/token`, { method: "PUT", headers: { [TTL_HEADER]: "60" } });
      const get = await fetch(`${failing.url}/latest/meta-data/`);

      // Assess
      expect([put.status, get.status]).toEqual([500, 500]);
      expect(failing.issuedTokens).toEqual([]);
    } finally {
      await failing.close();
    }
  });

  it.each(["garbage", "reset"] as const)("%s gives no HTTP answer at all", async (mode) => {
    // Prepare
    const broken = await startImdsEmulator(() => options, { mode });

    try {
      // Act
      const outcome = await fetch(`${broken.url}/latest/meta-data/`).then(
        (response) => response.status,
        (error: unknown) => error,
      );

      // Assess
      expect(outcome).toBeInstanceOf(Error);
    } finally {
      await broken.close();
    }
  });

  it("trickle sends a 200 header at once and then the body a byte a second", async () => {
    // Prepare
    const trickling = await startImdsEmulator(() => options, { mode: "trickle" });

    try {
      // Act: read for 2.5 s, then give up
      const { status, bytes } = await new Promise<{ status: number | undefined; bytes: number }>((resolve) => {
        const req = httpRequest(`${trickling.url}/latest/meta-data/`, (response) => {
          let bytes = 0;
          response.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
          });
          setTimeout(() => {
            req.destroy();
            resolve({ status: response.statusCode, bytes });
          }, 2_500);
        });
        req.end();
      });

      // Assess: 2 bytes of 200, give or take the timer's phase
      expect(status).toBe(200);
      expect(bytes).toBeGreaterThanOrEqual(1);
      expect(bytes).toBeLessThanOrEqual(3);
    } finally {
      await trickling.close();
    }
  });

  it("listens on the IPv6 loopback when asked", async () => {
    // Prepare
    const v6 = await startImdsEmulator(() => options, { host: "::1" });

    try {
      // Act
      const response = await fetch(`${v6.url}/latest/meta-data/`);

      // Assess
      expect(v6.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      expect(response.status).toBe(401);
    } finally {
      await v6.close();
    }
  });
});
