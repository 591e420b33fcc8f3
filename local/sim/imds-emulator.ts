import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ImdsOptionsView {
  httpTokens: "optional" | "required";
  httpEndpoint: "enabled" | "disabled";
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

const METADATA: Readonly<Record<string, string>> = {
  "ami-id": "ami-0abcdef1234567890",
  "instance-id": "i-0123456789abcdef0",
  "instance-type": "t3.micro",
  "local-ipv4": "10.0.0.12",
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

/** Starts an emulator on 127.0.0.1 (port 0 = ephemeral) that answers from `currentOptions()` at each request, so it follows the instance's CURRENT options. */
export function startImdsEmulator(
  currentOptions: () => ImdsOptionsView,
  opts: { hang?: boolean } = {},
): Promise<RunningImdsEmulator> {
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
      return { status: 401 };
    }
    const key = path.slice(METADATA_PREFIX.length);
    if (key === "") return { status: 200, body: `${Object.keys(METADATA).join("\n")}\n` };
    const value = METADATA[key];
    return value === undefined ? { status: 404 } : { status: 200, body: value };
  }

  function answer(request: IncomingMessage, path: string): Answer {
    if (currentOptions().httpEndpoint === "disabled") return { status: 403 };
    if (path === TOKEN_PATH) return answerToken(request);
    if (path.startsWith(METADATA_PREFIX)) return answerMetadata(request, path);
    return { status: 404 };
  }

  const server = createServer((request, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://imds").pathname;
    requests.push({ method: request.method ?? "", path });
    if (opts.hang) return;
    const { status, body = "", headers = {} } = answer(request, path);
    response.writeHead(status, { "content-type": "text/plain", ...headers });
    response.end(body);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error(`IMDS emulator listens on an unexpected address: ${String(address)}`));
        return;
      }
      resolve({
        url: `http://127.0.0.1:${address.port}`,
        requests,
        issuedTokens,
        close: () =>
          new Promise<void>((resolveClose, rejectClose) => {
            // A hanging emulator holds requests open forever; without this, close() would wait on them.
            for (const socket of sockets) socket.destroy();
            server.close((error) => (error ? rejectClose(error) : resolveClose()));
          }),
      });
    });
  });
}
