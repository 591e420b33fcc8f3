import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ImdsOptionsView {
  httpTokens: "optional" | "required";
  httpEndpoint: "enabled" | "disabled";
}

/**
 * How the emulator behaves. `follows-options` is real IMDS; the others are the hostile or broken servers a probe must
 * survive without a wrong `pass`, without running past its deadline and without sending the token anywhere else:
 * - `hang`: accepts and never answers; `reset`: closes every connection at once;
 * - `trickle`: sends a 200 header at once, then the body one byte a second (what kept GNU wget's -T busy for 60 s);
 * - `redirect`: answers the token PUT, but every GET with a 302 to `redirectTo` (a collector that records tokens);
 * - `slow`: answers as `follows-options` does, but each answer 1.7 s late, inside a request's deadline;
 * - `error-500`: 500 to everything; `garbage`: bytes that are not HTTP, then close;
 * - `gates-listing-only`: a local responder that refuses a token-less `/latest/meta-data/` but serves the credentials
 *   path to anyone, as an SSRF target would.
 */
export type ImdsEmulatorMode =
  | "follows-options"
  | "hang"
  | "reset"
  | "trickle"
  | "slow"
  | "redirect"
  | "error-500"
  | "garbage"
  | "gates-listing-only";

export interface ImdsEmulatorOptions {
  mode?: ImdsEmulatorMode;
  /** Loopback only: 127.0.0.1 (default) or ::1 (the IPv6 endpoint). */
  host?: "127.0.0.1" | "::1";
  /** Where `redirect` sends GETs, e.g. a token collector's URL. */
  redirectTo?: string;
}

export interface RunningImdsEmulator {
  url: string;
  close(): Promise<void>;
  requests: ReadonlyArray<{ method: string; path: string }>;
  /** Every token handed out, so tests can assert none of them leaks into a probe's output. */
  issuedTokens: ReadonlyArray<string>;
}

const TOKEN_PATH = "/latest/api/token";
const METADATA_PREFIX = "/latest/meta-data/";
const TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER = "x-aws-ec2-metadata-token";
const MAX_TTL_SECONDS = 21_600;
export const CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/";
const ROLE_NAME = "imdsv2-guard-sim-role";
const TRICKLE_BODY_BYTES = 200;
const SLOW_ANSWER_MS = 1_700;

const METADATA: Readonly<Record<string, string>> = {
  "ami-id": "ami-0abcdef1234567890",
  "instance-id": "i-0123456789abcdef0",
  "instance-type": "t3.micro",
  "local-ipv4": "10.0.0.12",
  "iam/security-credentials/": `${ROLE_NAME}\n`,
  [`iam/security-credentials/${ROLE_NAME}`]: '{"Code":"Success","AccessKeyId":"ASIASIMULATEDKEY0000"}',
};

function parseTtlSeconds(header: string | string[] | undefined): number | undefined {
  if (typeof header !== "string" || !/^\d+$/.test(header)) return undefined;
  const seconds = Number(header);
  return seconds >= 1 && seconds <= MAX_TTL_SECONDS ? seconds : undefined;
}

interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** `http://127.0.0.1:port` or `http://[::1]:port`. */
function urlOf(host: string, port: number): string {
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/**
 * Starts an emulator on loopback (port 0 = ephemeral) that answers from `currentOptions()` at each request, so it
 * follows the instance's CURRENT options, or misbehaves as `mode` says.
 */
export function startImdsEmulator(
  currentOptions: () => ImdsOptionsView,
  opts: ImdsEmulatorOptions = {},
): Promise<RunningImdsEmulator> {
  const mode = opts.mode ?? "follows-options";
  const host = opts.host ?? "127.0.0.1";
  const requests: Array<{ method: string; path: string }> = [];
  const issuedTokens: string[] = [];
  const tokenExpiries = new Map<string, number>();
  const sockets = new Set<Socket>();

  function hasValidToken(token: string): boolean {
    const expiresAt = tokenExpiries.get(token);
    return expiresAt !== undefined && expiresAt > Date.now();
  }

  function answerToken(request: IncomingMessage): Answer {
    if (request.method !== "PUT") return { status: 405 };
    // Real IMDS refuses token requests that went through a proxy, so a token never leaves the instance.
    if (request.headers["x-forwarded-for"] !== undefined) return { status: 403 };
    const ttlSeconds = parseTtlSeconds(request.headers[TTL_HEADER]);
    if (ttlSeconds === undefined) return { status: 400 };
    const token = randomBytes(42).toString("base64");
    tokenExpiries.set(token, Date.now() + ttlSeconds * 1000);
    issuedTokens.push(token);
    return { status: 200, body: token, headers: { [TTL_HEADER]: String(ttlSeconds) } };
  }

  function answerMetadata(request: IncomingMessage, path: string): Answer {
    if (request.method !== "GET" && request.method !== "HEAD") return { status: 405 };
    const token = request.headers[TOKEN_HEADER];
    // A token that is present but wrong is refused even when tokens are optional, as real IMDS does.
    if (token !== undefined) {
      if (typeof token !== "string" || !hasValidToken(token)) return { status: 401 };
    } else if (currentOptions().httpTokens === "required") {
      const servedToAnyone = mode === "gates-listing-only" && path.startsWith(CREDENTIALS_PATH);
      if (!servedToAnyone) return { status: 401 };
    }
    const key = path.slice(METADATA_PREFIX.length);
    if (key === "") return { status: 200, body: `${Object.keys(METADATA).join("\n")}\n` };
    const value = METADATA[key];
    return value === undefined ? { status: 404 } : { status: 200, body: value };
  }

  function answer(request: IncomingMessage, path: string): Answer {
    if (mode === "error-500") return { status: 500, body: "Internal Server Error" };
    if (currentOptions().httpEndpoint === "disabled") return { status: 403 };
    if (mode === "redirect" && request.method === "GET") {
      return { status: 302, headers: { location: `${opts.redirectTo ?? "http://127.0.0.1:9"}${path}` } };
    }
    if (path === TOKEN_PATH) return answerToken(request);
    if (path.startsWith(METADATA_PREFIX)) return answerMetadata(request, path);
    return { status: 404 };
  }

  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((request, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://imds").pathname;
    requests.push({ method: request.method ?? "", path });
    if (mode === "hang") return;
    if (mode === "garbage") {
      request.socket.end("\u0016\u0003\u0001\u0000garbage, not HTTP\r\n\r\n");
      return;
    }
    if (mode === "trickle") {
      trickle(response);
      return;
    }
    const { status, body = "", headers = {} } = answer(request, path);
    const send = () => {
      response.writeHead(status, { "content-type": "text/plain", ...headers });
      response.end(body);
    };
    if (mode === "slow") {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, SLOW_ANSWER_MS);
      timers.add(timer);
    } else {
      send();
    }
  });
  function trickle(response: ServerResponse): void {
    response.writeHead(200, { "content-type": "text/plain", "content-length": String(TRICKLE_BODY_BYTES) });
    let sent = 0;
    const timer = setInterval(() => {
      if (response.destroyed || sent >= TRICKLE_BODY_BYTES) {
        clearInterval(timer);
        timers.delete(timer);
        response.end();
        return;
      }
      response.write("x");
      sent++;
    }, 1000);
    timers.add(timer);
  }
  server.on("connection", (socket) => {
    if (mode === "reset") {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error(`IMDS emulator listens on an unexpected address: ${String(address)}`));
        return;
      }
      resolve({
        url: urlOf(host, address.port),
        requests,
        issuedTokens,
        close: () =>
          new Promise<void>((resolveClose, rejectClose) => {
            // A hanging emulator holds requests open forever; without this, close() would wait on them.
            for (const timer of timers) clearTimeout(timer);
            for (const socket of sockets) socket.destroy();
            server.close((error) => (error ? rejectClose(error) : resolveClose()));
          }),
      });
    });
  });
}

export interface RunningTokenCollector {
  url: string;
  close(): Promise<void>;
  /** Every request that reached the collector, with the IMDS token it carried, if any. */
  received: ReadonlyArray<{ method: string; path: string; token: string | undefined }>;
}

/**
 * The far end of a hostile redirect: another loopback port that records every token it is sent. It answers 401
 * without a token and 200 with one, so a client that follows the redirect reads exactly what would fool it into a
 * `pass`.
 */
export function startTokenCollector(host: "127.0.0.1" | "::1" = "127.0.0.1"): Promise<RunningTokenCollector> {
  const received: Array<{ method: string; path: string; token: string | undefined }> = [];
  const server = createServer((request, response) => {
    const header = request.headers[TOKEN_HEADER];
    const token = typeof header === "string" ? header : undefined;
    received.push({ method: request.method ?? "", path: new URL(request.url ?? "/", "http://x").pathname, token });
    response.writeHead(token === undefined ? 401 : 200, { "content-type": "text/plain" });
    response.end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error(`token collector listens on an unexpected address: ${String(address)}`));
        return;
      }
      resolve({
        url: urlOf(host, address.port),
        received,
        close: () => {
          server.closeAllConnections();
          return new Promise<void>((resolveClose) => server.close(() => resolveClose()));
        },
      });
    });
  });
}
