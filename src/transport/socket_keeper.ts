/**
 * Keeps a server's Unix socket file in place: binds it, notices when the file is removed or
 * replaced (src/transport/socket_watch.ts), recreates it, and says why the server is not
 * ready meanwhile. Shared by both ext_proc transports; the listener itself is theirs.
 */
import { getLogger } from "@logtape/logtape";
import { socketInode, type SocketWatch, watchSocket } from "./socket_watch.ts";
import { prepareSocketPath, removeSocketFile } from "./unix_socket.ts";

const log = getLogger(["tollgate", "extproc"]);

/** How often the socket file is checked, and a failed recreation retried. */
const SOCKET_CHECK_MS = 1000;

/** The transport's side: one listener on the path at a time. */
export interface SocketListener {
  /** Starts listening on `path` (free when called). */
  listen(path: string): Promise<void>;
  /**
   * Stops the current listener from accepting; its connections keep serving. Deno unlinks
   * whatever file is at the path when a Unix listener is released, so this is only called
   * on a free path, and a returned promise must settle only once the listener is released
   * (else the unlink could remove the next listener's file).
   */
  close(): void | Promise<void>;
}

export class SocketKeeper {
  #inode: number | undefined;
  /** The listener of a lost socket file is still open (its connections keep serving). */
  #staleListener = false;
  #watch: SocketWatch | undefined;
  /** Why the server cannot take new connections, while it recreates its socket. */
  #unready: string | undefined;

  private constructor(
    private readonly path: string,
    private readonly mode: number,
    private readonly listener: SocketListener,
    private readonly onLost: () => void,
  ) {}

  /** Binds `path` (refusing one a live process serves) and watches it from then on. */
  static async start(
    path: string,
    mode: number,
    listener: SocketListener,
    onLost: () => void,
  ): Promise<SocketKeeper> {
    const keeper = new SocketKeeper(path, mode, listener, onLost);
    await prepareSocketPath(path);
    await keeper.#bind();
    keeper.#watch = watchSocket(path, SOCKET_CHECK_MS, () => keeper.#inode, () => keeper.#recreate());
    return keeper;
  }

  async #bind(): Promise<void> {
    await this.listener.listen(this.path);
    try {
      await Deno.chmod(this.path, this.mode);
      this.#inode = await socketInode(this.path);
    } catch (error) {
      await this.listener.close();
      throw error;
    }
  }

  /**
   * The socket file is gone or replaced. Once the path is free (a dead socket left there is
   * removed; a live one or another file is waited out, never deleted), the old listener is
   * closed (its connections end gracefully, so Envoy reconnects) and a new one bound.
   * Retried on every check until it works; never throws: readiness carries the reason.
   */
  async #recreate(): Promise<void> {
    const { path } = this;
    if (this.#inode !== undefined) {
      this.#inode = undefined;
      this.#staleListener = true;
      this.#unready = `ext_proc socket ${path} was removed or replaced; recreating it`;
      log.error("ext_proc socket {path} was removed or replaced; recreating it", { path });
      this.onLost();
    }
    try {
      await prepareSocketPath(path);
      if (this.#staleListener) {
        await this.listener.close();
        this.#staleListener = false;
      }
      await this.#bind();
      this.#unready = undefined;
      log.info("ext_proc socket {path} recreated", { path });
    } catch (error) {
      const reason = `ext_proc socket ${path} cannot be recreated: ${(error as Error)?.message ?? error}`;
      if (reason !== this.#unready) log.error("{reason}; retrying", { reason });
      this.#unready = reason;
    }
  }

  /** Why new connections would fail right now, or undefined when the listener is fine. */
  unreadyReason(): string | undefined {
    return this.#unready;
  }

  /** Stops watching (before the server shuts down). */
  stop(): void {
    this.#watch?.stop();
  }

  /** Removes the socket file if it is still ours: after a loss, the path may be another process's. */
  async removeOwnFile(): Promise<void> {
    if (this.#inode !== undefined && await socketInode(this.path) === this.#inode) {
      await removeSocketFile(this.path);
    }
  }
}
